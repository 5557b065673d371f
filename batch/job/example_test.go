package job_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving/servingtest"
)

// Scoring a CSV file with a fake model (y = 2x + 1) into JSONL; one row
// does not parse and goes to the dead letters.
func Example() {
	dir, _ := os.MkdirTemp("", "job-example")
	defer os.RemoveAll(dir)
	input := filepath.Join(dir, "in.csv")
	os.WriteFile(input, []byte("id,a,b\nr1,1,2\nr2,3,x\nr3,5,6\n"), 0o644)

	s, err := job.Run(context.Background(), servingtest.Linear(2), input, filepath.Join(dir, "out"),
		job.WithSchema(rowio.Schema{
			Inputs: []rowio.Input{{Name: "x", Columns: []string{"a", "b"}}},
			Keys:   []rowio.Field{{Name: "id"}},
		}),
		job.WithOutputFormat(rowio.JSONL),
		job.WithMaxErrorRate(0.5, 0))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Rows, "scored,", s.Errors, "failed")
	out, _ := os.ReadFile(filepath.Join(dir, "out", job.PartFile(0, rowio.JSONL)))
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fmt.Println(line[:strings.Index(line, `,"model"`)] + "}")
	}
	dead, _ := os.ReadFile(filepath.Join(dir, "out", job.DeadLetterFile(0)))
	fmt.Print(string(dead))
	// Output:
	// 2 scored, 1 failed
	// {"row":0,"id":"r1","y":[3,5]}
	// {"row":2,"id":"r3","y":[11,13]}
	// {"row":1,"line":3,"stage":"decode","error":"column \"b\": \"x\" is not a number","raw":"r2,3,x"}
}

package job_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/rowio"
)

// childEnv, when set, makes the test binary a job: TestMain runs child.
const childEnv = "SERVEKIT_JOB_CHILD"

// child runs the job the environment describes and returns the exit code.
func child() int {
	format, _ := rowio.ParseFormat(os.Getenv("JOB_OUT_FORMAT"))
	ordered := os.Getenv("JOB_ORDERED") == "1"
	_, err := job.Run(context.Background(), slowLinear(time.Millisecond), os.Getenv("JOB_INPUT"), os.Getenv("JOB_OUTPUT"),
		job.WithSchema(schema), job.WithOutputFormat(format), job.WithBatchRows(50), job.WithPartRows(300),
		job.WithWorkers(2), job.WithOrdered(ordered))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestKillAndResume kills a real process running a job (SIGKILL, at a
// random moment) several times in a row, then lets a last run finish,
// and checks that every input row is in the output exactly once: for each
// output format, ordered and not.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const n, kills = 6000, 4
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i, format := range formats {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			input := writeInput(t, dir, formats[(i+1)%len(formats)], n)
			out := filepath.Join(dir, "out")
			start := func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=1", "JOB_INPUT="+input, "JOB_OUTPUT="+out,
					"JOB_OUT_FORMAT="+format.String(), "JOB_ORDERED="+strconv.Itoa(i%2))
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}
			killed := 0
			for range kills {
				cmd := start()
				time.Sleep(time.Duration(20+rng.IntN(250)) * time.Millisecond)
				if cmd.Process.Kill() == nil { // SIGKILL: no cleanup runs
					killed++
				}
				cmd.Wait()
			}
			m, _ := job.ReadManifest(out)
			if m != nil {
				t.Logf("after %d kills: %d parts committed, complete=%v", killed, len(m.Parts), m.Complete)
			}
			if err := start().Wait(); err != nil {
				t.Fatalf("last run: %v", err)
			}
			got := readOutput(t, out, format)
			got.exactlyOnce(t, n)
			if m, err := job.ReadManifest(out); err != nil || !m.Complete || len(m.Parts) != n/300 {
				t.Errorf("manifest after the last run: %+v, %v", m, err)
			}
		})
	}
}

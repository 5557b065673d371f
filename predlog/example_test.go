package predlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// Logging every call of a model to JSONL files; the file appears, whole,
// when the sink is closed (or the file rotates). Closing the chain closes
// the logger and the model; the sink, handed to the logger, is closed by
// its maker, after the chains that write to it.
func Example() {
	dir, _ := os.MkdirTemp("", "predlog-example")
	defer os.RemoveAll(dir)
	sink, _ := predlog.NewFileSink(dir, rowio.JSONL)
	model := serving.Chain(predlog.Middleware(sink))(servingtest.Linear(2))

	req := servingtest.Rows(2, 2, 1) // two rows: [1 2], [3 4]
	req.ID = "req-1"
	model.Predict(context.Background(), req)
	serving.Close(model)
	sink.Close()

	files, _ := filepath.Glob(filepath.Join(dir, "predictions-*.jsonl"))
	b, _ := os.ReadFile(files[0])
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// Leave out the timestamp, which changes every run.
		fmt.Println(line[:strings.Index(line, `"timestamp"`)] + line[strings.Index(line, `"x"`):])
	}
	// Output:
	// {"id":"req-1","model":"linear","model_version":"","x":[1,2],"y":[3,5]}
	// {"id":"req-1","model":"linear","model_version":"","x":[3,4],"y":[7,9]}
}

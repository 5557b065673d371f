package remote_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestJobBacksOff: a batch job scoring through a remote server that
// sheds load (429 + Retry-After) waits as long as the server asked, then
// scores every row: the server's delay reaches batch/job through the
// client as serving.Error.RetryAfter.
func TestJobBacksOff(t *testing.T) {
	var mu sync.Mutex
	var calls []time.Time
	linear := servingtest.Linear(2)
	shedding := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		mu.Lock()
		calls = append(calls, time.Now())
		first := len(calls) == 1
		mu.Unlock()
		if first {
			return nil, &serving.Error{Code: serving.ResourceExhausted, RetryAfter: time.Millisecond} // Retry-After: 1
		}
		return linear.Predict(ctx, req)
	}).WithMetadata(linear.Metadata())
	srv := serve(t, "linear", shedding)
	p := dial(t, srv.rest(), "linear")

	dir := t.TempDir()
	input := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(input, []byte("a,b\n1,2\n3,4\n5,6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := job.Run(context.Background(), p, input, filepath.Join(dir, "out"),
		job.WithSchema(rowio.Schema{Inputs: []rowio.Input{{Name: "x", Columns: []string{"a", "b"}}}}),
		job.WithOutputFormat(rowio.JSONL))
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != 3 || s.Errors != 0 {
		t.Errorf("%d rows scored, %d failed; want 3, 0", s.Rows, s.Errors)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 2 || calls[1].Sub(calls[0]) < time.Second {
		t.Errorf("the server was called at %v: want a retry at least the 1 s of Retry-After later", calls)
	}
}

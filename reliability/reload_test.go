package reliability_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/loadtest"
)

// TestCorruptModelDuringReload replaces a serving version's model file with
// a corrupted one while clients keep it busy: the reload fails, the loaded
// weights keep serving (no request fails), the log says why, the version
// stays ready; a good file afterwards is picked up.
func TestCorruptModelDuringReload(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	dir := fraudRepo(t, "1")
	srv := server(t, "--model-repository", dir, "--model-control-mode", "poll", "--repository-poll-secs", "0.2", "--cache")
	model := filepath.Join(dir, "fraud", "1", "model.onnx")
	client := loadtest.Client(8)
	defer client.CloseIdleConnections()
	url := srv.Base + "/v2/models/fraud/infer"
	next := func(i int64) loadtest.Request { return loadtest.Request{URL: url, Body: fraudRow(int(i % 512))} }
	ctx := context.Background()

	type phase struct {
		name string
		res  *loadtest.Result
	}
	var phases []phase
	run := func(name string, d time.Duration) {
		r, _ := loadtest.Closed(ctx, client, next, 4, d)
		phases = append(phases, phase{name, r})
	}
	run("before", time.Second)
	putFile(t, model, []byte("\x08\x07corrupt: not an ONNX model"))
	deadline := time.Now().Add(30 * time.Second)
	for countLines(srv.Output(), "version reload failed") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no reload failure logged after the corrupt file:\n%s", srv.Output())
		}
		run("corrupt", 500*time.Millisecond)
	}
	run("after the failed reload", 2*time.Second)
	ready, err := http.Get(srv.Base + "/v2/models/fraud/versions/1/ready")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusOK {
		t.Errorf("version 1 readiness after a failed reload: %d, want 200 (the loaded weights serve)", ready.StatusCode)
	}
	readyBefore := countLines(srv.Output(), `msg="version ready"`, "model=fraud", "version=1")
	putFile(t, model, fraudVariant(t, 3))
	deadline = time.Now().Add(30 * time.Second)
	for countLines(srv.Output(), `msg="version ready"`, "model=fraud", "version=1") == readyBefore {
		if time.Now().After(deadline) {
			t.Fatalf("the fixed file was not loaded:\n%s", srv.Output())
		}
		run("fixed", 500*time.Millisecond)
	}
	run("fixed", time.Second)

	for _, p := range phases {
		if p.res.Errors > 0 || len(p.res.OK) != int(p.res.Sent) {
			t.Errorf("%s: %s", p.name, p.res)
		}
	}
	line := ""
	for l := range strings.Lines(srv.Output()) {
		if strings.Contains(l, "version reload failed") {
			line = strings.TrimSpace(l)
			break
		}
	}
	t.Logf("log: %s", line)
	if !strings.Contains(line, "model=fraud") || !strings.Contains(line, "version=1") {
		t.Errorf("the failure log does not name the model and version: %s", line)
	}
	ok, err := srv.Metric("servekit_rollout_requests_total", `code="ok"`)
	if err != nil || ok == 0 {
		t.Errorf("servekit_rollout_requests_total{code=ok} = %v (%v)", ok, err)
	}
}

package repository_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip"
)

// The watcher sees a new version, a changed file, a new model, a removed
// version and a removed model.
func TestWatch(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}}`,
		"m/1/model.onnx": "ok first",
	})
	f := newLoader()
	r := open(t, root, f, repository.WithPollInterval(time.Millisecond))
	answers := func(model, version, want string) func() bool {
		return func() bool { who, _, err := ask(t, r, model, version); return err == nil && who == want }
	}

	write(t, root, map[string]string{"m/2/model.onnx": "ok second"})
	poll.Until(t, "version 2 serves", answers("m", "", "m/2:ok second"))

	write(t, root, map[string]string{"m/1/model.onnx": "ok first, retrained"})
	poll.Until(t, "version 1 reloaded", answers("m", "1", "m/1:ok first, retrained"))

	write(t, root, map[string]string{"n/5/model.onnx": "ok n"})
	poll.Until(t, "model n serves", answers("n", "", "n/5:ok n"))

	if err := os.RemoveAll(filepath.Join(root, "m", "2")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "version 2 unloaded", func() bool { return states(r, "m") == "1:ready" })
	poll.Until(t, "traffic back on version 1", answers("m", "", "m/1:ok first, retrained"))

	if err := os.RemoveAll(filepath.Join(root, "n")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "model n unloaded", func() bool { _, ok := r.Router("n"); return !ok })
	poll.Until(t, "every replaced Predictor closed", func() bool { return f.live.Load() == 1 })
}

// A reload to a corrupted file keeps the loaded version serving and says
// why in Status; the failed file is not retried at every poll, only when it
// changes again.
func TestFailedReloadKeepsOld(t *testing.T) {
	root := tree(t, map[string]string{"m/1/model.onnx": "ok good"})
	var logs logBuffer
	f := newLoader()
	r := open(t, root, f, repository.WithLogger(logs.logger()))
	write(t, root, map[string]string{"m/1/model.onnx": "fail: half a protobuf"})
	resync(t, r)
	if who, _, err := ask(t, r, "m", ""); err != nil || who != "m/1:ok good" {
		t.Fatalf("after a failed reload: %q, %v; want the old files serving", who, err)
	}
	v := versionStatus(r, "m", "1")
	if v.State != repository.StateReady || !strings.Contains(v.Reason, "half a protobuf") {
		t.Errorf("status %+v: want ready with the reload's failure as reason", v)
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("the failed reload is not logged:\n%s", logs.String())
	}
	loads := f.loads.Load()
	resync(t, r)
	resync(t, r)
	if f.loads.Load() != loads {
		t.Errorf("an unchanged broken file was loaded again (%d → %d loads)", loads, f.loads.Load())
	}
	// An explicit Load retries it, and reports the error.
	if err := r.Load(context.Background(), "m", "1"); serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), "half a protobuf") {
		t.Errorf("Load of the broken version: %v, want the loader's InvalidArgument", err)
	}
	if f.loads.Load() != loads+1 {
		t.Errorf("Load did not retry the failed version")
	}
	write(t, root, map[string]string{"m/1/model.onnx": "ok better"})
	resync(t, r)
	if who, _, _ := ask(t, r, "m", ""); who != "m/1:ok better" {
		t.Errorf("after the fix: %q", who)
	}
	if v := versionStatus(r, "m", "1"); v.Reason != "" {
		t.Errorf("reason %q left after a successful reload", v.Reason)
	}
}

// GET /v2/models/{m}/versions/{v}/ready tells the truth through a version's
// life: 503 while it loads, 200 once ready, 200 while a reload is under way
// (the old version serves), 503 when its first load failed, 404 once gone.
func TestReadinessOverHTTP(t *testing.T) {
	root := tree(t, map[string]string{"m/config.json": `{"version_policy": {"all": {}}}`, "m/1/model.onnx": "ok"})
	f := newLoader()
	gate := make(chan struct{})
	loadStarted := make(chan string, 4)
	slow := func(ctx context.Context, v repository.Version) (serving.Predictor, error) {
		if b, _ := os.ReadFile(v.Path); strings.Contains(string(b), "slow") {
			loadStarted <- v.Version
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return f.Load(ctx, v)
	}
	models := oip.NewServer()
	h := httpapi.New(httpapi.WithServer(models))
	r, err := repository.Open(context.Background(), root, slow, repository.WithLogger(quiet), repository.WithPollInterval(0),
		repository.WithServer(models))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ready := func(v string) int {
		resp, err := http.Get(srv.URL + "/v2/models/m/versions/" + v + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if got := ready("1"); got != http.StatusOK {
		t.Errorf("version 1 loaded: %d, want 200", got)
	}
	// A new version, loading.
	write(t, root, map[string]string{"m/2/model.onnx": "ok slow"})
	done := make(chan error, 1)
	go func() { done <- r.Sync(context.Background()) }()
	<-loadStarted
	if got := ready("2"); got != http.StatusServiceUnavailable {
		t.Errorf("version 2 loading: %d, want 503", got)
	}
	if got := states(r, "m"); got != "1:ready 2:loading" {
		t.Errorf("states while loading: %s", got)
	}
	gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := ready("2"); got != http.StatusOK {
		t.Errorf("version 2 loaded: %d, want 200", got)
	}
	// A reload of version 2: it stays ready while the new files load.
	write(t, root, map[string]string{"m/2/model.onnx": "ok slow, retrained"})
	go func() { done <- r.Sync(context.Background()) }()
	<-loadStarted
	if got := ready("2"); got != http.StatusOK {
		t.Errorf("version 2 reloading: %d, want 200 (the old one serves)", got)
	}
	if got := states(r, "m"); got != "1:ready 2:ready" {
		t.Errorf("states while reloading: %s", got)
	}
	gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A new version that fails.
	write(t, root, map[string]string{"m/3/model.onnx": "fail: bad bytes"})
	resync(t, r)
	if got := ready("3"); got != http.StatusServiceUnavailable {
		t.Errorf("version 3 failed: %d, want 503", got)
	}
	// Gone.
	if err := os.RemoveAll(filepath.Join(root, "m", "2")); err != nil {
		t.Fatal(err)
	}
	resync(t, r)
	if got := ready("2"); got != http.StatusNotFound {
		t.Errorf("version 2 removed: %d, want 404", got)
	}
	if got := ready("1"); got != http.StatusOK {
		t.Errorf("version 1 after the others changed: %d, want 200", got)
	}
}

// A removed version is closed only after its in-flight requests finish.
func TestRemoveDrainsInFlight(t *testing.T) {
	root := tree(t, map[string]string{"m/config.json": `{"version_policy": {"all": {}}}`, "m/1/model.onnx": "ok", "m/2/model.onnx": "block"})
	f := newLoader()
	f.gate = make(chan struct{})
	r := open(t, root, f)
	answer := make(chan error, 1)
	go func() {
		who, _, err := ask(t, r, "m", "2")
		if err == nil && who != "m/2:block" {
			err = serving.Errorf(serving.Internal, "answered by %s", who)
		}
		answer <- err
	}()
	poll.Until(t, "the request reached version 2", func() bool { return f.live.Load() == 2 && inFlight(r, "m", "2") == 1 })
	if err := os.RemoveAll(filepath.Join(root, "m", "2")); err != nil {
		t.Fatal(err)
	}
	synced := make(chan error, 1)
	go func() { synced <- r.Sync(context.Background()) }()
	poll.Until(t, "version 2 unloading", func() bool { return strings.Contains(states(r, "m"), "2:unloading") })
	if f.live.Load() != 2 {
		t.Fatal("version 2 was closed with a request in flight")
	}
	close(f.gate)
	if err := <-answer; err != nil {
		t.Errorf("the in-flight request failed: %v", err)
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if got := states(r, "m"); got != "1:ready" || f.live.Load() != 1 {
		t.Errorf("after the drain: %s with %d open, want 1:ready and 1", got, f.live.Load())
	}
}

func inFlight(r *repository.Repository, model, version string) int64 {
	rt, ok := r.Router(model)
	if !ok {
		return -1
	}
	for _, v := range rt.Status().Versions {
		if v.Version == version {
			return v.InFlight
		}
	}
	return -1
}

// Deleting the files of a version in an active rollout plan aborts the plan
// (traffic back on the stable version), logged, then unloads the version.
func TestRemoveAbortsItsPlan(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}, "traffic": "manual"}`,
		"m/1/model.onnx": "ok",
		"m/2/model.onnx": "ok",
	})
	var logs logBuffer
	r := open(t, root, newLoader(), repository.WithLogger(logs.logger()))
	rt, _ := r.Router("m")
	if err := rt.Start(rollout.Plan{Canary: "1", Stable: "2", Steps: []rollout.Step{{Weight: 10, Hold: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "m", "1")); err != nil {
		t.Fatal(err)
	}
	resync(t, r)
	if p := rt.Status().Plan; p == nil || p.State != rollout.PlanAborted {
		t.Errorf("plan %+v, want aborted", p)
	}
	if !strings.Contains(logs.String(), "rollout plan aborted") {
		t.Errorf("the abort is not logged:\n%s", logs.String())
	}
	if got := states(r, "m"); got != "2:ready" {
		t.Errorf("versions %s, want 2:ready", got)
	}
	if w := rt.Weights(); w["2"] != 100 {
		t.Errorf("weights %v, want all on the stable version", w)
	}
}

// Changing what a load depends on (parameters, warm-up) reloads every
// version; changing only the policy or traffic mode reloads none.
func TestConfigChangeReloads(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}, "parameters": {"threads": 1}}`,
		"m/1/model.onnx": "ok",
		"m/2/model.onnx": "ok",
	})
	f := newLoader()
	r := open(t, root, f)
	if f.loads.Load() != 2 {
		t.Fatalf("%d loads at start", f.loads.Load())
	}
	write(t, root, map[string]string{"m/config.json": `{"version_policy": {"all": {}}, "parameters": {"threads": 2}}`})
	resync(t, r)
	if got := f.loads.Load(); got != 4 {
		t.Errorf("after changing parameters: %d loads, want 4 (both versions reloaded)", got)
	}
	write(t, root, map[string]string{"m/config.json": `{"version_policy": {"latest": {"num_versions": 2}}, "traffic": "manual", "parameters": {"threads": 2}}`})
	resync(t, r)
	if got := f.loads.Load(); got != 4 {
		t.Errorf("after changing only the policy and traffic: %d loads, want still 4", got)
	}
	if st := r.Status().Models[0]; st.Policy != "latest 2" || st.Traffic != repository.TrafficManual {
		t.Errorf("status %+v does not show the new policy and traffic", st)
	}
}

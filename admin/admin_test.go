package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rollout/rollouttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet keeps plan logs out of test output.
var quiet = rollout.WithLogger(slog.New(slog.DiscardHandler))

func newRouter(t *testing.T, opts ...rollout.Option) *rollout.Router {
	t.Helper()
	r, err := rollout.New("m", append([]rollout.Option{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func mustPut(t testing.TB, r *rollout.Router, v string, p serving.Predictor) {
	t.Helper()
	if err := r.Put(v, p); err != nil {
		t.Fatalf("Put(%q): %v", v, err)
	}
}

func ask(t testing.TB, p serving.Predictor, req *serving.Request) {
	t.Helper()
	if _, err := p.Predict(context.Background(), req); err != nil {
		t.Fatalf("Predict: %v", err)
	}
}

// logBuffer collects JSON log lines safely.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// records returns the log lines as maps.
func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// fakeLoader puts and removes versions of its router, as a repository does.
type fakeLoader struct {
	r     *rollout.Router
	calls []string
}

func (f *fakeLoader) Load(_ context.Context, model, version string) error {
	f.calls = append(f.calls, "load "+model+"/"+version)
	if version == "broken" {
		return serving.Errorf(serving.InvalidArgument, "repository: %s/%s: model.onnx is not a model", model, version)
	}
	if version == "missing" {
		return serving.Errorf(serving.NotFound, "repository: %s has no version %s on disk", model, version)
	}
	return f.r.Put(version, servingtest.Linear(4))
}

func (f *fakeLoader) Unload(ctx context.Context, model, version string) error {
	f.calls = append(f.calls, "unload "+model+"/"+version)
	return f.r.Remove(ctx, version)
}

type adminHarness struct {
	t      *testing.T
	r      *rollout.Router
	clock  *rollouttest.Clock
	h      http.Handler
	log    *logBuffer
	loader *fakeLoader
}

// newAdmin is a Handler that admits every request (AllowUnauthenticated);
// newAuthAdmin one behind auth.
func newAdmin(t *testing.T) *adminHarness { return adminWith(t, admin.AllowUnauthenticated()) }

func newAuthAdmin(t *testing.T, auth admin.Authorizer) *adminHarness {
	return adminWith(t, admin.WithAuthorizer(auth))
}

func mustAdmin(t *testing.T, reg admin.Registry, opts ...admin.Option) *admin.Handler {
	t.Helper()
	a, err := admin.New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func adminWith(t *testing.T, opts ...admin.Option) *adminHarness {
	t.Helper()
	clock := rollouttest.NewClock(time.Unix(1000, 0))
	r := newRouter(t, rollout.WithClock(clock))
	mustPut(t, r, "1", servingtest.Linear(4))
	mustPut(t, r, "2", servingtest.Linear(4))
	logs := &logBuffer{}
	loader := &fakeLoader{r: r}
	opts = append([]admin.Option{admin.WithLoader(loader), admin.WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))}, opts...)
	h := mustAdmin(t, admin.Routers{r}, opts...)
	logs.mu.Lock()
	logs.buf.Reset() // AllowUnauthenticated's warning: the tests read the changes
	logs.mu.Unlock()
	return &adminHarness{t: t, r: r, clock: clock, h: h, log: logs, loader: loader}
}

// do sends a request and returns the status and the decoded JSON body,
// failing the test when the body is not JSON.
func (a *adminHarness) do(method, path, body string, header ...string) (int, map[string]any) {
	a.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, req)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		a.t.Fatalf("%s %s: body %q is not JSON: %v", method, path, w.Body.String(), err)
	}
	if w.Code >= 400 {
		if msg, _ := out["error"].(string); msg == "" {
			a.t.Errorf("%s %s: %d without an error message: %s", method, path, w.Code, w.Body.String())
		}
	}
	return w.Code, out
}

// want checks the status of a request.
func (a *adminHarness) want(status int, method, path, body string, header ...string) map[string]any {
	a.t.Helper()
	got, out := a.do(method, path, body, header...)
	if got != status {
		a.t.Errorf("%s %s %s: %d %v, want %d", method, path, body, got, out, status)
	}
	return out
}

func TestAdminStatus(t *testing.T) {
	a := newAdmin(t)
	ask(t, a.r, servingtest.Rows(4, 1, 0))
	out := a.want(200, "GET", "/v1/models", "")
	models := out["models"].([]any)
	if len(models) != 1 {
		t.Fatalf("models %v", models)
	}
	m := models[0].(map[string]any)
	if m["model"] != "m" || m["ready"] != true || m["mirroring"] != false {
		t.Errorf("model %v", m)
	}
	versions := m["versions"].([]any)
	v1 := versions[0].(map[string]any)
	if v1["version"] != "1" || v1["weight"] != 100.0 || v1["requests"] != 1.0 || v1["ready"] != true {
		t.Errorf("version 1: %v", v1)
	}
	if one := a.want(200, "GET", "/v1/models/m", ""); one["model"] != "m" {
		t.Errorf("GET /v1/models/m: %v", one)
	}
	a.want(404, "GET", "/v1/models/nope", "")
	a.want(404, "GET", "/v2/models", "")
	a.want(404, "GET", "/v1/models/m/nothing", "")
	out = a.want(405, "POST", "/v1/models", "{}")
	if !strings.Contains(out["error"].(string), "want GET") {
		t.Errorf("405 message %v", out)
	}
	if len(a.log.records(t)) != 0 {
		t.Errorf("reads were logged: %s", a.log)
	}
}

func TestAdminWeights(t *testing.T) {
	a := newAdmin(t)
	out := a.want(200, "PUT", "/v1/models/m/weights", `{"1": 90, "2": 10}`)
	if w := a.r.Weights(); w["1"] != 90 || w["2"] != 10 {
		t.Errorf("weights %v", w)
	}
	if v := out["versions"].([]any)[1].(map[string]any); v["weight"] != 10.0 {
		t.Errorf("answer %v", out)
	}
	for _, tc := range []struct {
		status int
		body   string
	}{
		{400, `{"1": 90, "2": 5}`},       // sums to 95
		{400, `{"1": 99.95, "2": 0.05}`}, // finer than 0.1
		{400, `{"1": -10, "2": 110}`},
		{404, `{"1": 50, "9": 50}`},
		{400, `{"1": 90, "2": 10`},        // malformed
		{400, `{"1": "90", "2": "10"}`},   // strings
		{400, `[90, 10]`},                 // not an object
		{400, `null`},                     //
		{400, ``},                         // empty
		{400, `{"1": 100} {"2": 100}`},    // two values
		{400, `{"1": 100, "2": 0} trail`}, // trailing garbage
		{413, `{"1": 100, "x": "` + strings.Repeat("a", admin.DefaultMaxBody) + `"}`},
	} {
		a.want(tc.status, "PUT", "/v1/models/m/weights", tc.body)
	}
	if w := a.r.Weights(); w["1"] != 90 || w["2"] != 10 {
		t.Errorf("weights changed by refused requests: %v", w)
	}
	out = a.want(405, "POST", "/v1/models/m/weights", `{"1": 100}`)
	_ = out
	a.want(404, "PUT", "/v1/models/nope/weights", `{"1": 100}`)

	// The change is logged with who, what and before → after; a refused
	// one as refused; no body.
	recs := a.log.records(t)
	first := recs[0]
	if first["msg"] != "admin: change" || first["what"] != "set_weights" || first["who"] != "anonymous" ||
		first["before"] != "weights 1=100%" || first["after"] != "weights 1=90% 2=10%" {
		t.Errorf("log %v", first)
	}
	if recs[1]["msg"] != "admin: change refused" || recs[1]["err"] == nil {
		t.Errorf("refusal log %v", recs[1])
	}
	if strings.Contains(a.log.String(), "aaaaaaaa") {
		t.Error("a request body reached the log")
	}
}

func TestAdminSwitchAndRollback(t *testing.T) {
	a := newAdmin(t)
	a.want(400, "POST", "/v1/models/m/rollback", "") // nothing to roll back to
	a.want(200, "POST", "/v1/models/m/switch", `{"version": "2"}`)
	if w := a.r.Weights(); w["2"] != 100 {
		t.Errorf("after switch: %v", w)
	}
	a.want(404, "POST", "/v1/models/m/switch", `{"version": "9"}`)
	a.want(400, "POST", "/v1/models/m/switch", `{}`)
	a.want(400, "POST", "/v1/models/m/switch", `{"version": "2", "force": true}`) // unknown field
	a.want(405, "GET", "/v1/models/m/switch", "")
	a.want(400, "POST", "/v1/models/m/rollback", `{"to": "1"}`) // takes no body
	a.want(200, "POST", "/v1/models/m/rollback", " { } ")       // but an empty object is fine
	if w := a.r.Weights(); w["1"] != 100 {
		t.Errorf("after rollback: %v", w)
	}
	// A version that is not ready: 409.
	notReady := servingtest.Linear(4)
	notReady.Close()
	mustPut(t, a.r, "3", notReady)
	a.want(409, "POST", "/v1/models/m/switch", `{"version": "3"}`)
}

func TestAdminPlan(t *testing.T) {
	a := newAdmin(t)
	plan := `{"canary": "2", "steps": [{"weight": 10, "hold": "1m"}, {"weight": 50, "hold": "1m"}],
		"interval": "10s", "guards": [{"min_requests": 0}, {"max_error_rate": 0.01}, {"max_p99": "1s"},
		{"min_agreement": {"rate": 0.9, "min_pairs": 0}}, {"max_error_rate_increase": 0.01}]}`
	out := a.want(200, "POST", "/v1/models/m/plan", plan)
	p := out["plan"].(map[string]any)
	if p["state"] != "running" || p["canary"] != "2" || p["stable"] != "1" || p["weight"] != 10.0 {
		t.Errorf("plan %v", p)
	}
	a.want(400, "POST", "/v1/models/m/plan", plan) // one at a time
	a.want(200, "POST", "/v1/models/m/plan/pause", "")
	a.want(400, "POST", "/v1/models/m/plan/pause", "") // already paused
	a.want(200, "POST", "/v1/models/m/plan/resume", "")
	a.want(404, "POST", "/v1/models/m/plan/explode", "")
	a.want(405, "GET", "/v1/models/m/plan/pause", "")
	out = a.want(200, "POST", "/v1/models/m/plan/promote", "")
	if p := out["plan"].(map[string]any); p["state"] != "succeeded" || a.r.Weights()["2"] != 100 {
		t.Errorf("after promote: %v, weights %v", p, a.r.Weights())
	}
	a.want(400, "POST", "/v1/models/m/plan/abort", "") // no plan
	a.want(200, "POST", "/v1/models/m/switch", `{"version": "1"}`)
	a.want(200, "POST", "/v1/models/m/plan", `{"canary": "2", "steps": [{"weight": 5}]}`)
	out = a.want(200, "POST", "/v1/models/m/plan/abort", "")
	if p := out["plan"].(map[string]any); p["state"] != "aborted" || a.r.Weights()["1"] != 100 {
		t.Errorf("after abort: %v, weights %v", p, a.r.Weights())
	}

	for _, bad := range []string{
		`{"canary": "2"}`,                                            // no steps
		`{"steps": [{"weight": 5}]}`,                                 // no canary
		`{"canary": "2", "steps": [{}]}`,                             // no weight
		`{"canary": "2", "steps": [{"weight": 50}, {"weight": 10}]}`, // going down
		`{"canary": "2", "steps": [{"weight": 0.05}]}`,               // finer than 0.1
		`{"canary": "2", "steps": [{"weight": 5, "hold": 60}]}`,      // hold not a string
		`{"canary": "2", "steps": [{"weight": 5, "hold": "soon"}]}`,
		`{"canary": "2", "steps": [{"weight": 5, "hold": "-1s"}]}`,
		`{"canary": "2", "steps": [{"weight": 5}], "guards": [{}]}`,
		`{"canary": "2", "steps": [{"weight": 5}], "guards": [{"min_requests": 5, "max_p99": "1s"}]}`,
		`{"canary": "2", "steps": [{"weight": 5}], "guards": [{"max_error_rate": 2}]}`,
		`{"canary": "2", "steps": [{"weight": 5}], "guards": [{"min_agreement": {"rate": -1}}]}`,
		`{"canary": "2", "steps": [{"weight": 5}], "guards": [{"prometheus": "up"}]}`,
		`{"canary": "2", "stable": "2", "steps": [{"weight": 5}]}`,
	} {
		a.want(400, "POST", "/v1/models/m/plan", bad)
	}
	a.want(404, "POST", "/v1/models/m/plan", `{"canary": "9", "steps": [{"weight": 5}]}`)
}

func TestAdminMirror(t *testing.T) {
	a := newAdmin(t)
	out := a.want(200, "PUT", "/v1/models/m/mirror", `{"version": "2", "percent": 100, "max_mirrors": 4, "timeout": "1s", "compare": {"y": "tolerance(0.001,0)"}}`)
	if out["mirroring"] != true {
		t.Errorf("mirroring %v", out)
	}
	ask(t, a.r, servingtest.Rows(4, 1, 0))
	_, s, _ := a.r.Mirroring()
	poll.Until(t, "a mirror completed", func() bool { return s.Snapshot().Completed >= 1 })
	out = a.want(200, "GET", "/v1/models/m", "")
	sh := out["shadow"].(map[string]any)
	o := sh["outputs"].([]any)[0].(map[string]any)
	if sh["challenger"] != "2" || sh["pairs"] != 1.0 || o["rule"] != "tolerance(0.001,0)" || o["agreement"] != 1.0 {
		t.Errorf("shadow %v", sh)
	}
	a.want(200, "PUT", "/v1/models/m/mirror", `{"version": "2", "percent": 10}`)
	if _, s, _ := a.r.Mirroring(); s.Snapshot().Percent != 10 {
		t.Errorf("percent %v", s.Snapshot().Percent)
	}
	for _, bad := range []string{
		`{"version": "2"}`, // no percent
		`{"percent": 10}`,  // no version
		`{"version": "2", "percent": 101}`,
		`{"version": "3", "percent": 10, "compare": {"y": "median"}}`,
		`{"version": "3", "percent": 10, "compare": {"y": "tolerance(1)"}}`,
		`{"version": "3", "percent": 10, "max_mirrors": -1}`,
		`{"version": "3", "percent": 10, "timeout": "fast"}`,
	} {
		a.want(400, "PUT", "/v1/models/m/mirror", bad)
	}
	a.want(404, "PUT", "/v1/models/m/mirror", `{"version": "9", "percent": 10}`)
	a.want(405, "POST", "/v1/models/m/mirror", `{"version": "2", "percent": 10}`)
	out = a.want(200, "DELETE", "/v1/models/m/mirror", "")
	if out["mirroring"] != false || out["shadow"] == nil {
		t.Errorf("after DELETE: %v, want the last comparison, not mirroring", out)
	}
	a.want(400, "DELETE", "/v1/models/m/mirror", "") // none active
	rec := a.log.records(t)[0]
	if rec["what"] != "mirror" || rec["version"] != "2" || rec["percent"] != 100.0 || !strings.Contains(rec["after"].(string), "mirror 2 at 100%") {
		t.Errorf("log %v", rec)
	}
}

func TestAdminLoadUnload(t *testing.T) {
	a := newAdmin(t)
	out := a.want(200, "POST", "/v1/models/m/versions/3/load", "")
	if len(out["versions"].([]any)) != 3 {
		t.Errorf("after load: %v", out)
	}
	a.want(400, "POST", "/v1/models/m/versions/broken/load", "")
	a.want(404, "POST", "/v1/models/m/versions/missing/load", "")
	a.want(200, "POST", "/v1/models/m/versions/3/unload", "")
	a.want(400, "POST", "/v1/models/m/versions/1/unload", "") // has the traffic
	a.want(404, "POST", "/v1/models/m/versions/3/reload", "")
	a.want(405, "GET", "/v1/models/m/versions/3/load", "")
	if got := strings.Join(a.loader.calls, ","); got != "load m/3,load m/broken,load m/missing,unload m/3,unload m/1" {
		t.Errorf("loader calls %s", got)
	}
	rec := a.log.records(t)[0]
	if rec["what"] != "load" || rec["version"] != "3" || rec["before"] != "1(ready,100%) 2(ready,0%)" ||
		rec["after"] != "1(ready,100%) 2(ready,0%) 3(ready,0%)" {
		t.Errorf("log %v", rec)
	}

	plain := newAdmin(t)
	plain.h = mustAdmin(t, admin.Routers{plain.r}, admin.AllowUnauthenticated(), admin.WithLogger(slog.New(slog.DiscardHandler))) // no loader
	plain.want(501, "POST", "/v1/models/m/versions/3/load", "")
}

func TestAdminAuthorization(t *testing.T) {
	const token = "s3cret-t0ken"
	a := newAuthAdmin(t, admin.BearerToken(token))
	req := httptest.NewRequest("GET", "/v1/models", nil)
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, req)
	if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	a.want(401, "PUT", "/v1/models/m/weights", `{"2": 100}`, "Authorization", "Bearer wrong")
	a.want(401, "GET", "/v1/models", "", "Authorization", token) // not a bearer header
	a.want(200, "PUT", "/v1/models/m/weights", `{"2": 100}`, "Authorization", "Bearer "+token)
	if strings.Contains(a.log.String(), token) {
		t.Error("the token reached the log")
	}
	recs := a.log.records(t)
	if recs[0]["msg"] != "admin: refused" || recs[len(recs)-1]["who"] != "bearer" {
		t.Errorf("log %v", recs)
	}

	// A hook that lets anyone read and only "ops" write: 403.
	readOnly := func(r *http.Request) (string, error) {
		user := r.Header.Get("X-User")
		if r.Method != http.MethodGet && user != "ops" {
			return "", errors.New("admin: " + user + " may not change rollouts")
		}
		return user, nil
	}
	b := newAuthAdmin(t, readOnly)
	b.want(200, "GET", "/v1/models", "", "X-User", "dev")
	b.want(403, "POST", "/v1/models/m/switch", `{"version": "2"}`, "X-User", "dev")
	b.want(200, "POST", "/v1/models/m/switch", `{"version": "2"}`, "X-User", "ops")
	if recs := b.log.records(t); recs[len(recs)-1]["who"] != "ops" {
		t.Errorf("who %v", recs[len(recs)-1])
	}
}

// Routers works as a Registry; a closed router answers 503.
func TestAdminClosedRouter(t *testing.T) {
	r := newRouter(t)
	mustPut(t, r, "1", servingtest.Linear(4))
	r.Close()
	a := &adminHarness{t: t, h: mustAdmin(t, admin.Routers{r}, admin.AllowUnauthenticated(), admin.WithLogger(slog.New(slog.DiscardHandler)))}
	a.want(503, "POST", "/v1/models/m/switch", `{"version": "1"}`)
	a.want(200, "GET", "/v1/models", "")
}

// Issue 18 row 12: an Admin without an Authorizer admitted every request,
// silently. Now it refuses to build unless the caller opts in, and the
// opt-in is logged.
func TestAdminSecureByDefault(t *testing.T) {
	r := newRouter(t)
	_, err := admin.New(admin.Routers{r})
	if !errors.Is(err, admin.ErrNoAuthorizer) || serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("no authorizer: %v, want ErrNoAuthorizer", err)
	}
	if _, err := admin.New(admin.Routers{r}, admin.WithAuthorizer(nil)); !errors.Is(err, admin.ErrNoAuthorizer) {
		t.Errorf("a nil authorizer: %v, want ErrNoAuthorizer", err)
	}
	if _, err := admin.New(admin.Routers{r}, admin.WithAuthorizer(admin.BearerToken("t")), admin.AllowUnauthenticated()); err == nil {
		t.Error("an authorizer and AllowUnauthenticated: built")
	}
	if _, err := admin.New(admin.Routers{r}, admin.AllowUnauthenticated(), admin.WithMaxBody(0)); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("max body 0 (every body refused): %v, want InvalidArgument", err)
	}
	logs := &logBuffer{}
	if _, err := admin.New(admin.Routers{r}, admin.AllowUnauthenticated(), admin.WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))); err != nil {
		t.Fatal(err)
	}
	if recs := logs.records(t); len(recs) != 1 || recs[0]["level"] != "WARN" || !strings.Contains(recs[0]["msg"].(string), "without authentication") {
		t.Errorf("AllowUnauthenticated logged %v, want one warning", recs)
	}
}

// Protect puts a page beside the admin API (a drift report) behind the
// same credential.
func TestAuthorizerProtect(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("report")) })
	secured := admin.BearerToken("tok").Protect(page, slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		header string
		want   int
	}{{"", 401}, {"Bearer nope", 401}, {"tok", 401}, {"Bearer tok", 200}} {
		req := httptest.NewRequest("GET", "/drift/", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		secured.ServeHTTP(w, req)
		if w.Code != c.want || (c.want == 200) != (w.Body.String() == "report") {
			t.Errorf("Authorization %q: %d %q, want %d", c.header, w.Code, w.Body.String(), c.want)
		}
		if c.want == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: 401 without WWW-Authenticate", c.header)
		}
	}
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/servingtest"
)

// fakeRepo is an oip.Repository that records what it is asked.
type fakeRepo struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeRepo) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeRepo) Index(context.Context) ([]oip.IndexEntry, error) {
	return []oip.IndexEntry{{Name: "m", Version: "1", State: oip.StateReady}, {Name: "n", State: oip.StateUnavailable, Reason: "unloaded"}}, nil
}

func (f *fakeRepo) LoadModel(_ context.Context, m string) error {
	f.record("load " + m)
	if m == "bad" {
		return serving.Errorf(serving.NotFound, "no model %q", m)
	}
	return nil
}

func (f *fakeRepo) UnloadModel(_ context.Context, m string) error {
	f.record("unload " + m)
	return nil
}

func (f *fakeRepo) ModelConfig(m string) (*mc.ModelConfig, bool) {
	if m != "m" {
		return nil, false
	}
	return &mc.ModelConfig{Name: "m", MaxBatchSize: 4}, true
}

// Triton's extensions over REST: server metadata lists them; the model
// configuration (the repository's, or synthesized), the statistics at
// every level, Triton's shapes.
func TestExtensionsREST(t *testing.T) {
	srv := oip.NewServer()
	h := httpapi.New(httpapi.WithServer(srv))
	_ = srv.Handle("m", servingtest.Linear(2), oip.Version("1"))
	_ = srv.Handle("other", servingtest.Linear(1))

	w := call(t, h, http.MethodGet, "/v2", "")
	var meta struct{ Extensions []string }
	if json.Unmarshal(w.Body.Bytes(), &meta) != nil || strings.Join(meta.Extensions, ",") != "binary_tensor_data,classification,parameters,schedule_policy,model_configuration,statistics" {
		t.Errorf("server metadata %s", w.Body)
	}
	for _, path := range []string{"/v2/models/m/config", "/v2/models/m/versions/1/config"} {
		w = call(t, h, http.MethodGet, path, "")
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"m"`) || !strings.Contains(w.Body.String(), `"dims":[-1,2]`) {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	srv.AttachRepository(&fakeRepo{})
	if w = call(t, h, http.MethodGet, "/v2/models/m/config", ""); !strings.Contains(w.Body.String(), `"max_batch_size":4`) {
		t.Errorf("a repository's configuration: %s", w.Body)
	}
	if w = call(t, h, http.MethodGet, "/v2/models/nope/config", ""); w.Code != http.StatusNotFound {
		t.Errorf("unknown model's config: %d", w.Code)
	}

	if w = call(t, h, http.MethodPost, "/v2/models/m/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`); w.Code != 200 {
		t.Fatalf("infer: %d %s", w.Code, w.Body)
	}
	count := func(path string) (int, []uint64) {
		w := call(t, h, http.MethodGet, path, "")
		var st struct {
			ModelStats []struct {
				InferenceStats struct{ Success struct{ Count uint64 } } `json:"inference_stats"`
			} `json:"model_stats"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
			t.Fatalf("%s: %v %s", path, err, w.Body)
		}
		var n []uint64
		for _, s := range st.ModelStats {
			n = append(n, s.InferenceStats.Success.Count)
		}
		return w.Code, n
	}
	for path, want := range map[string]string{"/v2/models/stats": "[1 0]", "/v2/models/m/stats": "[1]", "/v2/models/m/versions/1/stats": "[1]"} {
		if code, n := count(path); code != 200 || fmt.Sprint(n) != want {
			t.Errorf("%s: %d %v, want %s", path, code, n, want)
		}
	}
	if w = call(t, h, http.MethodGet, "/v2/models/m/versions/9/stats", ""); w.Code != http.StatusNotFound {
		t.Errorf("unknown version's statistics: %d", w.Code)
	}
}

// Repository control over REST: 501 unless the Server enables it, then
// behind the admin authoriser (401 with WWW-Authenticate without the
// token, 403 for a refused caller), and the repository's index, load and
// unload as Triton's clients send them.
func TestRepositoryControlREST(t *testing.T) {
	h := httpapi.New()
	if w := call(t, h, http.MethodPost, "/v2/repository/index", ""); w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "not enabled") {
		t.Errorf("control off: %d %s", w.Code, w.Body)
	}
	repo := &fakeRepo{}
	auth := admin.BearerToken("s3cret")
	srv := oip.NewServer(oip.WithRepositoryControl(func(r *http.Request) (string, error) {
		if r.Header.Get("X-Forbidden") != "" {
			return "", errors.New("not this caller")
		}
		return auth(r)
	}))
	srv.AttachRepository(repo)
	h = httpapi.New(httpapi.WithServer(srv))
	if w := call(t, h, http.MethodPost, "/v2/repository/index", ""); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %v", w.Code, w.Header())
	}
	tok := []string{"Authorization", "Bearer s3cret"}
	if w := call(t, h, http.MethodPost, "/v2/repository/index", "", append(tok, "X-Forbidden", "1")...); w.Code != http.StatusForbidden {
		t.Errorf("refused caller: %d %s", w.Code, w.Body)
	}
	w := call(t, h, http.MethodPost, "/v2/repository/index", "", tok...)
	if w.Code != 200 || w.Body.String() != `[{"name":"m","version":"1","state":"READY"},{"name":"n","state":"UNAVAILABLE","reason":"unloaded"}]` {
		t.Errorf("index: %d %s", w.Code, w.Body)
	}
	if w = call(t, h, http.MethodPost, "/v2/repository/index", `{"ready": true}`, tok...); w.Body.String() != `[{"name":"m","version":"1","state":"READY"}]` {
		t.Errorf("ready index: %s", w.Body)
	}
	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/v2/repository/models/n/load", "{}", 200},
		{"/v2/repository/models/n/unload", `{"parameters": {"unload_dependents": false}}`, 200},
		{"/v2/repository/models/bad/load", "", 404},
		{"/v2/repository/models/n/load", `{"parameters": {"config": "{}"}}`, 501},
		{"/v2/repository/models/n/load", `{"parameters": {"nope": 1}}`, 400},
		{"/v2/repository/models/n/unload", `{"parameters": {"unload_dependents": "yes"}}`, 400},
		{"/v2/repository/models/n/load", `{"parameters":`, 400},
		{"/v2/repository/models/n/load", `{"parameters": {"` + strings.Repeat("x", 70<<10) + `": 1}}`, 413},
	} {
		if w := call(t, h, http.MethodPost, c.path, c.body, tok...); w.Code != c.code {
			t.Errorf("%s %.40s: %d %s, want %d", c.path, c.body, w.Code, w.Body, c.code)
		}
	}
	if got := strings.Join(repo.calls, ", "); got != "load n, unload n, load bad" {
		t.Errorf("repository calls: %s", got)
	}
}

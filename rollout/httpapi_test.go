package rollout_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestOverHTTP registers a router with serving/httpapi: every version it
// holds is reachable, readiness tells the truth per version, and the
// routing-key and version headers reach the router.
func TestOverHTTP(t *testing.T) {
	r := newRouter(t, "fraud", quiet)
	defer r.Close()
	var g registry
	mustPut(t, r, "1", g.add("1"))
	two := g.add("2")
	mustPut(t, r, "2", two)
	h := httpapi.New()
	if err := h.Handle("fraud", r); err != nil {
		t.Fatal(err)
	}
	body := `{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}`
	do := func(method, path string, hdr ...string) *httptest.ResponseRecorder {
		t.Helper()
		var req *http.Request
		if method == "POST" {
			req = httptest.NewRequest(method, path, strings.NewReader(body))
		} else {
			req = httptest.NewRequest(method, path, nil)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	version := func(w *httptest.ResponseRecorder) string {
		t.Helper()
		var resp struct {
			ModelVersion string `json:"model_version"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
			t.Fatalf("infer: %d %s", w.Code, w.Body)
		}
		return resp.ModelVersion
	}

	if v := version(do("POST", "/v2/models/fraud/infer")); v != "1" {
		t.Errorf("routed to %q, want 1 (100%%)", v)
	}
	if v := version(do("POST", "/v2/models/fraud/versions/2/infer")); v != "2" {
		t.Errorf("URL pinned to 2, answered by %q", v)
	}
	if v := version(do("POST", "/v2/models/fraud/infer", "X-Model-Version", "2")); v != "2" {
		t.Errorf("header pinned to 2, answered by %q", v)
	}
	if w := do("POST", "/v2/models/fraud/versions/9/infer"); w.Code != http.StatusNotFound {
		t.Errorf("unknown version: %d", w.Code)
	}

	// Sticky keys over HTTP: a 50 % canary, each key always the same side.
	if err := r.SetWeights(map[string]float64{"1": 50, "2": 50}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, key := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"} {
		v := version(do("POST", "/v2/models/fraud/infer", "X-Routing-Key", key))
		for range 3 {
			if again := version(do("POST", "/v2/models/fraud/infer", "X-Routing-Key", key)); again != v {
				t.Fatalf("key %q moved from %s to %s", key, v, again)
			}
		}
		if want, _ := r.RouteKey(key); v != want {
			t.Errorf("key %q over HTTP on %s, router says %s", key, v, want)
		}
		seen[v] = true
	}
	if len(seen) != 2 {
		t.Errorf("8 keys at 50%% all on one version: %v", seen)
	}

	// Readiness per version, while version 2 reloads.
	if w := do("GET", "/v2/models/fraud/versions/2/ready"); w.Code != http.StatusOK {
		t.Errorf("version 2 ready: %d", w.Code)
	}
	two.notReady.Store(true)
	if w := do("GET", "/v2/models/fraud/versions/2/ready"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("version 2 not ready: %d", w.Code)
	}
	if w := do("GET", "/v2/models/fraud/ready"); w.Code != http.StatusOK {
		t.Errorf("model ready with version 1 serving: %d", w.Code)
	}
	if w := do("POST", "/v2/models/fraud/versions/2/infer"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("infer pinned to a version not ready: %d", w.Code)
	}
	for _, key := range []string{"alice", "bob", "carol", "dave"} {
		if v := version(do("POST", "/v2/models/fraud/infer", "X-Routing-Key", key)); v != "1" {
			t.Errorf("key %q answered by %s while 2 is not ready", key, v)
		}
	}
	if w := do("GET", "/v2/models/fraud/versions/9/ready"); w.Code != http.StatusNotFound {
		t.Errorf("unknown version ready: %d", w.Code)
	}

	// Model metadata lists the router's versions.
	mustPut(t, r, "3", servingtest.Linear(1))
	var md struct {
		Versions []string `json:"versions"`
	}
	if w := do("GET", "/v2/models/fraud"); json.Unmarshal(w.Body.Bytes(), &md) != nil || strings.Join(md.Versions, ",") != "1,2,3" {
		t.Errorf("metadata versions %v", md.Versions)
	}
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// twoVersions is a minimal serving.Versioned: versions "1" and "2" of the
// linear model, pinned by Request.Version, routed to "1" otherwise. It
// records the version and key of every request it sees.
type twoVersions struct {
	byVersion map[string]*servingtest.Fake
	mu        sync.Mutex
	seen      []*serving.Request // guarded by mu
}

func newTwoVersions() *twoVersions {
	return &twoVersions{byVersion: map[string]*servingtest.Fake{"1": servingtest.Linear(2), "2": servingtest.Linear(2)}}
}

func (tv *twoVersions) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	tv.mu.Lock()
	tv.seen = append(tv.seen, req.Clone())
	tv.mu.Unlock()
	v := req.Version
	if v == "" {
		v = "1"
	}
	p, ok := tv.byVersion[v]
	if !ok {
		return nil, serving.Errorf(serving.NotFound, "no version %q", v)
	}
	resp, err := p.Predict(ctx, req)
	if resp != nil {
		resp.Version = v
	}
	return resp, err
}

func (tv *twoVersions) Metadata() serving.Metadata { return tv.byVersion["1"].Metadata() }

func (tv *twoVersions) Versions() []string { return []string{"1", "2"} }

func (tv *twoVersions) Version(v string) (serving.Predictor, bool) {
	p, ok := tv.byVersion[v]
	return p, ok
}

func (tv *twoVersions) last() *serving.Request {
	tv.mu.Lock()
	defer tv.mu.Unlock()
	return tv.seen[len(tv.seen)-1]
}

func TestVersionedDefault(t *testing.T) {
	h := httpapi.New()
	tv := newTwoVersions()
	if err := h.Handle("m", tv); err != nil {
		t.Fatal(err)
	}

	// A version the default holds is reachable, through the default (so the
	// whole chain sees it), pinned by Request.Version.
	w := call(t, h, "POST", "/v2/models/m/versions/2/infer", linearBody)
	if w.Code != http.StatusOK {
		t.Fatalf("infer version 2: %d %s", w.Code, w.Body)
	}
	var resp inferResp
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ModelVersion != "2" || tv.last().Version != "2" {
		t.Errorf("answered as %q, request pinned to %q; want 2 and 2", resp.ModelVersion, tv.last().Version)
	}

	// Readiness is the version's own.
	tv.byVersion["2"].Close()
	if w := call(t, h, "GET", "/v2/models/m/versions/2/ready", ""); w.Code != http.StatusServiceUnavailable {
		t.Errorf("ready of a closed version: %d, want 503", w.Code)
	}
	if w := call(t, h, "GET", "/v2/models/m/versions/1/ready", ""); w.Code != http.StatusOK {
		t.Errorf("ready of version 1: %d, want 200", w.Code)
	}
	if ok, err := h.ModelReady("m", "2"); ok || err != nil {
		t.Errorf("ModelReady(m, 2) = %v, %v; want false, nil", ok, err)
	}

	// Unknown versions are 404 everywhere.
	for _, path := range []string{"/v2/models/m/versions/3/ready", "/v2/models/m/versions/3"} {
		if w := call(t, h, "GET", path, ""); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
		}
	}
	if w := call(t, h, "POST", "/v2/models/m/versions/3/infer", linearBody); w.Code != http.StatusNotFound {
		t.Errorf("infer version 3: %d, want 404", w.Code)
	}

	// Metadata lists the versions the default holds.
	_, versions, err := h.ModelMetadata("m", "")
	if err != nil || !slices.Equal(versions, []string{"1", "2"}) {
		t.Errorf("ModelMetadata versions = %v, %v; want [1 2]", versions, err)
	}
}

func TestVersionAndKeyHeaders(t *testing.T) {
	h := httpapi.New()
	tv := newTwoVersions()
	if err := h.Handle("m", tv); err != nil {
		t.Fatal(err)
	}
	w := call(t, h, "POST", "/v2/models/m/infer", linearBody, "X-Model-Version", "2", "X-Routing-Key", "user-7")
	if w.Code != http.StatusOK {
		t.Fatalf("infer: %d %s", w.Code, w.Body)
	}
	if got := tv.last(); got.Version != "2" || got.Key != "user-7" {
		t.Errorf("request Version %q Key %q, want 2 and user-7", got.Version, got.Key)
	}
	if w := call(t, h, "POST", "/v2/models/m/infer", linearBody, "X-Model-Version", "9"); w.Code != http.StatusNotFound {
		t.Errorf("unknown pinned version: %d, want 404", w.Code)
	}

	// The parameter wins over the header; V1 routes read the header too.
	body := `{"parameters":{"routing_key":"from-param"},"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`
	call(t, h, "POST", "/v2/models/m/infer", body, "X-Routing-Key", "from-header")
	if got := tv.last().Key; got != "from-param" {
		t.Errorf("Key = %q, want from-param", got)
	}
	if w := call(t, h, "POST", "/v1/models/m:predict", `{"instances":[[1,2]]}`, "X-Routing-Key", "v1-user"); w.Code != http.StatusOK {
		t.Fatalf("V1 predict: %d %s", w.Code, w.Body)
	}
	if got := tv.last().Key; got != "v1-user" {
		t.Errorf("V1 Key = %q, want v1-user", got)
	}

	// Both can be turned off.
	h2 := httpapi.New(httpapi.WithRoutingKeyHeader(""), httpapi.WithVersionHeader(""))
	tv2 := newTwoVersions()
	if err := h2.Handle("m", tv2); err != nil {
		t.Fatal(err)
	}
	call(t, h2, "POST", "/v2/models/m/infer", linearBody, "X-Model-Version", "2", "X-Routing-Key", "user-7")
	if got := tv2.last(); got.Version != "" || got.Key != "" {
		t.Errorf("with headers off: Version %q Key %q, want both empty", got.Version, got.Key)
	}
}

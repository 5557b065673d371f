package admin_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// adminRoutes are the routes FuzzAdminRequest sends bodies to.
var adminRoutes = []struct{ method, path string }{
	{"PUT", "/v1/models/m/weights"},
	{"POST", "/v1/models/m/switch"},
	{"POST", "/v1/models/m/plan"},
	{"PUT", "/v1/models/m/mirror"},
	{"POST", "/v1/models/m/rollback"},
	{"POST", "/v1/models/m/plan/pause"},
}

// FuzzAdminRequest sends arbitrary bodies to the admin API's routes: it
// must never panic, always answer JSON, and answer bad input with a 4xx,
// never a 5xx. Seeds are in testdata/fuzz/FuzzAdminRequest and below.
func FuzzAdminRequest(f *testing.F) {
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"1": 90, "2": 10}`},
		{0, `{"1": 1e308, "2": -1e308}`},
		{1, `{"version": "2"}`},
		{2, `{"canary": "2", "steps": [{"weight": 1, "hold": "1m"}, {"weight": 50}], "guards": [{"min_agreement": {"rate": 0.9, "min_pairs": 10}}]}`},
		{2, `{"canary": "2", "steps": [{"weight": NaN}]}`},
		{3, `{"version": "2", "percent": 50, "compare": {"y": "threshold(0.5)", "": "tolerance(1e-3,0)"}}`},
		{3, `{"version": "2", "percent": 50, "timeout": "1ns", "max_mirrors": 1}`},
		{4, ``},
		{5, `{}`},
	} {
		f.Add(s.route, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		a := newAdmin(t)
		rt := adminRoutes[int(route)%len(adminRoutes)]
		req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(string(body)))
		w := httptest.NewRecorder()
		a.h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, w.Code, w.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s %q: answer %q is not JSON: %v", rt.method, rt.path, body, w.Body, err)
		}
		if w.Code >= 400 && out["error"] == nil {
			t.Fatalf("%s %s %q: %d without an error", rt.method, rt.path, body, w.Code)
		}
	})
}

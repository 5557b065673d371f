package repository_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/admin"
)

// The admin API drives the repository: unload and load a version over HTTP,
// with the repository's errors mapped to statuses and names from the URL
// validated before they reach the disk.
func TestAdminLoadUnload(t *testing.T) {
	root := tree(t, map[string]string{
		"m/config.json":  `{"version_policy": {"all": {}}}`,
		"m/1/model.onnx": "ok",
		"m/2/model.onnx": "ok",
		"m/3/model.onnx": "fail: corrupt",
	})
	r := open(t, root, newLoader())
	h, err := admin.New(r, admin.WithLoader(r), admin.WithAuthorizer(admin.BearerToken("tok")), admin.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/v1/models/m/versions/2/unload"); code != 200 {
		t.Fatalf("unload: %d %s", code, body)
	}
	if _, v, err := ask(t, r, "m", ""); err != nil || v != "1" {
		t.Errorf("after unloading version 2 traffic is on %q, %v; want 1", v, err)
	}
	if code, body := post("/v1/models/m/versions/2/load"); code != 200 || !strings.Contains(body, `"2"`) {
		t.Fatalf("load: %d %s", code, body)
	}
	if _, v, err := ask(t, r, "m", ""); err != nil || v != "2" {
		t.Errorf("after loading version 2 traffic is on %q, %v; want 2", v, err)
	}
	for path, want := range map[string]int{
		"/v1/models/m/versions/3/load":      400, // the loader's InvalidArgument: a corrupt file
		"/v1/models/m/versions/9/load":      404,
		"/v1/models/m/versions/01/load":     400,
		"/v1/models/nosuch/versions/1/load": 404,
		"/v1/models/..%2fx/versions/1/load": 400,
		"/v1/models/m/versions/9/unload":    404,
	} {
		if code, body := post(path); code != want {
			t.Errorf("POST %s: %d %s, want %d", path, code, body, want)
		}
	}
}

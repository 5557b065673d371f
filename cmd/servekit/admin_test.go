package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// printedURL finds the URL a line starting with prefix names.
func printedURL(t *testing.T, out *output, prefix string) (url, rest string) {
	t.Helper()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + ` (http://\S+)(.*)$`)
	for _, l := range out.all() {
		if m := re.FindStringSubmatch(l); m != nil {
			return m[1], m[2]
		}
	}
	t.Fatalf("no line %q... in the output:\n%s", prefix, strings.Join(out.all(), "\n"))
	return "", ""
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// --metrics-port other than --http-port moves /metrics to a listener of
// its own: the inference port no longer answers it.
func TestMetricsPort(t *testing.T) {
	base, curl, out, stop := startOut(t, "--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(freePort(t)))
	defer stop()
	url, body := curlRequest(t, curl)
	checkScore(t, url, body)
	metrics, _ := printedURL(t, out, "metrics on")
	if code, text := get(t, metrics, ""); code != 200 || !strings.Contains(text, "servekit_requests_total") {
		t.Errorf("GET %s: %d, want 200 with servekit's metrics", metrics, code)
	}
	if code, _ := get(t, base+"/metrics", ""); code != 404 {
		t.Errorf("GET /metrics on the inference port: %d, want 404", code)
	}
}

// pprof is an admin route: behind the admin token, the one given or one
// made up and printed.
func TestDebugNeedsTheAdminToken(t *testing.T) {
	for _, given := range []string{"s3cret", ""} {
		args := []string{"--debug-addr", "127.0.0.1:0"}
		if given != "" {
			args = append(args, "--admin-token", given)
		}
		_, _, out, stop := startOut(t, args...)
		root, rest := printedURL(t, out, "debug on")
		token := given
		if given == "" {
			m := regexp.MustCompile(`Bearer ([0-9a-f]{32})\)`).FindStringSubmatch(rest)
			if m == nil {
				t.Fatalf("no made-up token printed: %q", rest)
			}
			token = m[1]
		} else if strings.Contains(strings.Join(out.all(), "\n"), given) {
			t.Error("the token given was printed")
		}
		for _, path := range []string{"", "goroutine?debug=1", "cmdline"} {
			if code, _ := get(t, root+path, ""); code != 401 {
				t.Errorf("GET %s without the token: %d, want 401", path, code)
			}
			if code, _ := get(t, root+path, "wrong"); code != 401 {
				t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
			}
		}
		if code, text := get(t, root+"goroutine?debug=1", token); code != 200 || !strings.HasPrefix(text, "goroutine profile") {
			t.Errorf("GET goroutine with the token: %d %.40q", code, text)
		}
		stop()
	}
}

// Issue 18 item 7: a repository with a model that cannot batch (Silero VAD
// was the one found: fixed dimension 0 on its state inputs) failed to load
// under -batch. Now the models that batch are batched, the others served
// unbatched, and the log says so once per model.
func TestBatchServesWhatCannotBatch(t *testing.T) {
	dir := t.TempDir()
	fixed, err := onnxbuild.Identity(onnxbuild.Float, 4) // x [4]: no batch dimension
	if err != nil {
		t.Fatal(err)
	}
	put(t, filepath.Join(dir, "fixed", "config.json"), []byte(`{"version_policy": {"all": {}}}`))
	put(t, filepath.Join(dir, "fixed", "1", "model.onnx"), fixed)
	put(t, filepath.Join(dir, "fixed", "2", "model.onnx"), fixed)
	put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	base, _, out, stop := startOut(t, "--model-repository", dir, "--model-control-mode", "none", "--batch")
	defer stop()

	for _, v := range []string{"1", "2"} {
		resp, err := http.Post(base+"/v2/models/fixed/versions/"+v+"/infer", "application/json",
			strings.NewReader(`{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"data":[1,2,3,4]`) {
			t.Errorf("fixed v%s: %d %s", v, resp.StatusCode, b)
		}
	}
	if code, version, score := postInfer(t, base+"/v2/models/fraud/infer"); code != 200 || version != "1" || !(score > 0 && score < 1) {
		t.Errorf("fraud: %d v%q %v", code, version, score)
	}
	var said []string
	for _, l := range out.all() {
		if strings.Contains(l, "serving it unbatched") {
			said = append(said, l)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "model=fixed") {
		t.Errorf("log lines about unbatched models: %q, want one, for fixed", said)
	}
	if strings.Contains(strings.Join(out.all(), "\n"), "failed") {
		t.Errorf("a version failed to load:\n%s", strings.Join(out.all(), "\n"))
	}
}

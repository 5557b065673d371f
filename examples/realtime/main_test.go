package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

var features = []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4}

// TestExample: the example answers one request over REST and the same
// score over gRPC on the same port, exports its metrics there, and shuts
// down cleanly when its context ends (goleak checks nothing is left).
func TestExample(t *testing.T) {
	orttest.Require(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "127.0.0.1:0", "../../testdata/models/fraud.onnx", pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("run ended before serving: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`on http://(\S+) `).FindStringSubmatch(line)
	if m == nil {
		cancel()
		t.Fatalf("printed %q", line)
	}
	addr := m[1]

	body, _ := json.Marshal(map[string]any{"inputs": []any{map[string]any{"name": "features", "shape": []int{1, 8}, "datatype": "FP32", "data": features}}})
	resp, err := http.Post("http://"+addr+"/v2/models/fraud/infer", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rest struct{ Outputs []struct{ Data []float32 } }
	if err := json.Unmarshal(b, &rest); err != nil || resp.StatusCode != 200 || len(rest.Outputs) != 1 || len(rest.Outputs[0].Data) != 1 {
		t.Fatalf("REST: %d %s", resp.StatusCode, b)
	}

	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer gcancel()
	var out pb.ModelInferResponse
	err = cc.Invoke(gctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, &pb.ModelInferRequest{ModelName: "fraud",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "features", Datatype: "FP32", Shape: []int64{1, 8}, Contents: &pb.InferTensorContents{Fp32Contents: features}}}}, &out)
	cc.Close()
	if err != nil {
		t.Fatalf("gRPC on the same port: %v", err)
	}
	got, err := grpcapi.DecodeResponse(&out)
	if err != nil || len(got.Outputs) != 1 {
		t.Fatalf("gRPC answer %v: %v", &out, err)
	}
	if s, _ := got.Outputs[0].Float64At(0); float32(s) != rest.Outputs[0].Data[0] {
		t.Errorf("gRPC score %v, REST %v", s, rest.Outputs[0].Data[0])
	}

	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "servekit_requests_total") {
		t.Errorf("/metrics has no servekit_requests_total:\n%.400s", b)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

package grpcapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
)

// demo serves the fraud model (ONNX Runtime required) over REST and gRPC on
// one real loopback listener, as servekit serve's HTTP port does, and with
// grpc-go's server (grpcserver.New) on another, and returns both host:ports.
func demo(t *testing.T) (addr, native string) {
	t.Helper()
	m := orttest.Fraud(t)
	rest := httpapi.New()
	if err := rest.Handle("fraud", m, httpapi.Version("1")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: grpcapi.New(rest, grpcapi.WithFallback(rest)), Protocols: grpcapi.Protocols()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return ln.Addr().String(), serveNative(t, rest)
}

// fraudRows are the rows both clients send: edge values included, so a
// conversion that rounds would show.
var fraudRows = [][]float32{
	{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4},
	{1e-7, 3.4e38, -3.4e38, 0.1, 0.2, 0.3, -0, 1},
	{-2.5, 2.5, 100, -100, 0.333333, 7, 8, 9},
}

func flat(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// badCase is a bad request as both protocols spell it, with REST's status
// and the gRPC code it must get.
type badCase struct {
	name           string
	model, version string
	input, dtype   string
	shape          []int64
	data           any // JSON data
	wantStatus     int
	wantGRPC       string // the code as grpc-go spells it
}

// badCases are the bad requests both clients send; REST's status and the
// gRPC code must be of the same class.
var badCases = []badCase{
	{"wrong datatype", "fraud", "", "features", "FP64", []int64{1, 8}, flat(fraudRows[:1]), 400, "InvalidArgument"},
	{"wrong shape", "fraud", "", "features", "FP32", []int64{1, 7}, flat(fraudRows[:1])[:7], 400, "InvalidArgument"},
	{"wrong name", "fraud", "", "feats", "FP32", []int64{1, 8}, flat(fraudRows[:1]), 400, "InvalidArgument"},
	{"unknown model", "nope", "", "features", "FP32", []int64{1, 8}, flat(fraudRows[:1]), 404, "NotFound"},
	{"unknown version", "fraud", "9", "features", "FP32", []int64{1, 8}, flat(fraudRows[:1]), 404, "NotFound"},
}

// restInfer posts a V2 request and returns the status and, on success, the
// raw bits of output "score" (binary tensor extension: no decimal rounding
// in between).
func restInfer(t *testing.T, addr, model, version, input, dtype string, shape []int64, data any) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"inputs":     []any{map[string]any{"name": input, "datatype": dtype, "shape": shape, "data": data}},
		"parameters": map[string]any{"binary_data_output": true},
	})
	url := "http://" + addr + "/v2/models/" + model
	if version != "" {
		url += "/versions/" + version
	}
	resp, err := http.Post(url+"/infer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	n, err := strconv.Atoi(resp.Header.Get(httpapi.HeaderContentLength))
	if err != nil || n > len(b) {
		t.Fatalf("REST answer without a binary part: %s", b)
	}
	var js struct{ Outputs []struct{ Name string } }
	if err := json.Unmarshal(b[:n], &js); err != nil || len(js.Outputs) != 1 || js.Outputs[0].Name != "score" {
		t.Fatalf("REST answer %s: %v", b[:n], err)
	}
	return 200, b[n:]
}

func hexBits(b []byte) string { return fmt.Sprintf("%x", b) }

func codeClass(status int) string {
	return map[int]string{400: "invalid_argument", 404: "not_found"}[status]
}

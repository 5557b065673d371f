package overhead_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
)

const body = `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`

func load(b *testing.B) *onnx.Model {
	return orttest.Fraud(b, onnx.WithIntraOpThreads(1))
}

// BenchmarkFraudInProcess: the model called directly, the request built as
// the HTTP layer would build it.
func BenchmarkFraudInProcess(b *testing.B) {
	m := load(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		x, _ := serving.NewTensor("features", []int64{1, 8}, []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0, -0.4})
		if _, err := m.Predict(ctx, &serving.Request{Model: "fraud", Inputs: []serving.Tensor{x}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFraudHandler: the same through httpapi.Handler, no sockets.
func BenchmarkFraudHandler(b *testing.B) {
	h := httpapi.New()
	_ = h.Handle("fraud", load(b))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/v2/models/fraud/infer", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkFraudHTTP: the same over a loopback connection (keep-alive).
func BenchmarkFraudHTTP(b *testing.B) {
	h := httpapi.New()
	_ = h.Handle("fraud", load(b))
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	url := srv.URL + "/v2/models/fraud/infer"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode)
		}
	}
}

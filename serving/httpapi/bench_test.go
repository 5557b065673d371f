package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/httpbench"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// fraudModel stands in for testdata/models/fraud.onnx: FP32 "features"
// [-1,8] to "score" [-1,1], so the benchmarks measure the HTTP layer only.
func fraudModel() *servingtest.Fake {
	md := serving.Metadata{
		Name:    "fraud",
		Inputs:  []serving.TensorSpec{{Name: "features", DataType: serving.FP32, Shape: []int64{-1, 8}}},
		Outputs: []serving.TensorSpec{{Name: "score", DataType: serving.FP32, Shape: []int64{-1, 1}}},
	}
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		in, ok := req.Input("features")
		if !ok {
			return nil, serving.Errorf(serving.InvalidArgument, "no features")
		}
		x, _ := serving.Values[float32](in)
		s := make([]float32, in.Shape[0])
		for i := range s {
			s[i] = 0.5 + x[i*8]/1000
		}
		out, err := serving.NewTensor("score", []int64{in.Shape[0], 1}, s)
		return &serving.Response{ID: req.ID, Outputs: []serving.Tensor{out}}, err
	}).WithMetadata(md)
}

const fraudBody = `{"id":"1","inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.12,-1.5,3.25,0.5,12.75,-0.001,7,0.333]}]}`

func fraudRequest() *serving.Request {
	x, _ := serving.NewTensor("features", []int64{1, 8}, []float32{0.12, -1.5, 3.25, 0.5, 12.75, -0.001, 7, 0.333})
	return &serving.Request{ID: "1", Model: "fraud", Inputs: []serving.Tensor{x}}
}

// BenchmarkPredictInProcess is the baseline: the same model called directly.
func BenchmarkPredictInProcess(b *testing.B) {
	m := fraudModel()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Predict(ctx, fraudRequest()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInferJSON is the handler alone on a fraud-sized V2 JSON request
// (decode, predict, encode), without sockets.
func BenchmarkInferJSON(b *testing.B) { benchHandler(b, fraudBody) }

// BenchmarkInferJSONBatch64 is the same with 64 rows.
func BenchmarkInferJSONBatch64(b *testing.B) {
	rows := strings.Repeat("[0.12,-1.5,3.25,0.5,12.75,-0.001,7,0.333],", 64)
	benchHandler(b, `{"inputs":[{"name":"features","shape":[64,8],"datatype":"FP32","data":[`+rows[:len(rows)-1]+`]}]}`)
}

func benchHandler(b *testing.B, payload string) {
	h := httpapi.New()
	_ = h.Handle("fraud", fraudModel())
	body := strings.NewReader(payload)
	req := httptest.NewRequest("POST", "/v2/models/fraud/infer", body)
	w := &discard{h: http.Header{}}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(payload)
		req.Body = readCloser{body}
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
	}
}

// BenchmarkInferHTTPRoundTrip adds a real loopback connection and client.
func BenchmarkInferHTTPRoundTrip(b *testing.B) {
	h := httpapi.New()
	_ = h.Handle("fraud", fraudModel())
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	url := srv.URL + "/v2/models/fraud/infer"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post(url, "application/json", strings.NewReader(fraudBody))
		if err != nil {
			b.Fatal(err)
		}
		drain(resp)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func drain(resp *http.Response) {
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	resp.Body.Close()
}

// BenchmarkDecodeRequest is the V2 decoder alone on the fraud request.
func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(fraudBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := httpapi.DecodeRequest(body, -1, 1<<24); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServe is the handler behind a real http.Server on an in-memory
// connection (internal/httpbench), beside the floor every handler shares:
// a bare net/http handler that reads the body and writes the same answer.
// The difference is what servekit adds to net/http's own work.
func BenchmarkServe(b *testing.B) {
	h := httpapi.New()
	_ = h.Handle("fraud", fraudModel())
	req := httpbench.Request("/v2/models/fraud/infer", fraudBody)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/v2/models/fraud/infer", strings.NewReader(fraudBody)))
	b.Run("floor", func(b *testing.B) { httpbench.Serve(b, httpbench.Fixed(w.Body.Bytes()), req) })
	b.Run("infer", func(b *testing.B) { httpbench.Serve(b, h, req) })
}

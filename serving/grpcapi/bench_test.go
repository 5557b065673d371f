package grpcapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// fraudLike is a fake with the fraud model's signature (features FP32
// [-1, 8] → score FP32 [-1, 1]), so the benchmarks measure the transports.
func fraudLike() serving.Predictor {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		in, _ := req.Input("features")
		score, err := serving.NewTensor("score", []int64{in.Shape[0], 1}, make([]float32, in.Shape[0]))
		if err != nil {
			return nil, err
		}
		return &serving.Response{Outputs: []serving.Tensor{score}}, nil
	})
}

const fraudJSON = `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`

func benchServer(b *testing.B) string {
	rest := httpapi.New()
	if err := rest.Handle("fraud", fraudLike()); err != nil {
		b.Fatal(err)
	}
	return serveAddr(b, grpcapi.New(rest, grpcapi.WithFallback(rest)))
}

// BenchmarkLoopbackREST and BenchmarkLoopbackGRPC send the fraud request
// from 64 clients over loopback, client and server in this process: V2 JSON
// over HTTP/1.1 keep-alive against gRPC (grpc-go, one HTTP/2 connection)
// with raw and with typed contents. Compare them within one run.
func BenchmarkLoopbackREST(b *testing.B) {
	addr := benchServer(b)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + addr + "/v2/models/fraud/infer"
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			resp, err := c.Post(url, "application/json", bytes.NewReader([]byte(fraudJSON)))
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			io.Copy(&buf, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

func benchGRPC(b *testing.B, msg *pb.ModelInferRequest) {
	addr := benchServer(b)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		out := new(pb.ModelInferResponse)
		for p.Next() {
			out.Reset()
			if err := cc.Invoke(context.Background(), inferencepbconnect.GRPCInferenceServiceModelInferProcedure, msg, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func fraudRequest() *serving.Request {
	x, _ := serving.NewTensor("features", []int64{1, 8}, []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4})
	return &serving.Request{Model: "fraud", Inputs: []serving.Tensor{x}}
}

func BenchmarkLoopbackGRPCRaw(b *testing.B) { benchGRPC(b, grpcapi.EncodeRequest(fraudRequest())) }

func BenchmarkLoopbackGRPCTyped(b *testing.B) {
	msg := grpcapi.EncodeRequest(fraudRequest())
	x, _ := serving.Values[float32](fraudRequest().Inputs[0])
	msg.RawInputContents = nil
	msg.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: x}
	benchGRPC(b, msg)
}

// BenchmarkHandlerREST and BenchmarkHandlerGRPC call the handlers directly
// (no network, an httptest recorder): the cost of each protocol's handler,
// decode to encode, on the fraud request.
func BenchmarkHandlerREST(b *testing.B) {
	rest := httpapi.New()
	rest.Handle("fraud", fraudLike())
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v2/models/fraud/infer", strings.NewReader(fraudJSON))
		w := httptest.NewRecorder()
		rest.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkHandlerGRPC(b *testing.B) {
	rest := httpapi.New()
	rest.Handle("fraud", fraudLike())
	h := grpcapi.New(rest)
	msg, _ := proto.Marshal(grpcapi.EncodeRequest(fraudRequest()))
	body := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", inferencepbconnect.GRPCInferenceServiceModelInferProcedure, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Te", "trailers")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Result().Trailer.Get("Grpc-Status") != "0" {
			b.Fatal(w.Code, w.Result().Trailer, w.Header())
		}
	}
}

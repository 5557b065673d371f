package grpcapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
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

var fraudRow = []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4}

// benchRows are the request sizes the loopback benchmarks run: the demo's
// one row, and a batch of 256 rows (2,048 FP32 in, 256 out), where
// encoding the numbers matters (bench/grpc.sh's ROWS=256).
var benchRows = []int{1, 256}

// fraudJSONRows is the V2 JSON body of n fraud rows.
func fraudJSONRows(n int) string {
	if n == 1 {
		return fraudJSON
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"inputs":[{"name":"features","shape":[%d,8],"datatype":"FP32","data":[`, n)
	for i := range n * len(fraudRow) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(fraudRow[i%len(fraudRow)]), 'g', -1, 32))
	}
	b.WriteString("]}]}")
	return b.String()
}

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
	for _, n := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchREST(b, fraudJSONRows(n)) })
	}
}

func benchREST(b *testing.B, body string) {
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
			resp, err := c.Post(url, "application/json", strings.NewReader(body))
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

func benchGRPC(b *testing.B, msg *pb.ModelInferRequest) { benchGRPCAt(b, benchServer(b), msg) }

// benchNative is benchGRPC against grpc-go's server (grpcserver.New).
func benchNative(b *testing.B, msg *pb.ModelInferRequest) {
	rest := httpapi.New()
	if err := rest.Handle("fraud", fraudLike()); err != nil {
		b.Fatal(err)
	}
	benchGRPCAt(b, serveNative(b, rest), msg)
}

func benchGRPCAt(b *testing.B, addr string, msg *pb.ModelInferRequest) {
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

// fraudRequest is a request of n fraud rows.
func fraudRequest(n int) *serving.Request {
	var rows []float32
	for range n {
		rows = append(rows, fraudRow...)
	}
	x, _ := serving.NewTensor("features", []int64{int64(n), 8}, rows)
	return &serving.Request{Model: "fraud", Inputs: []serving.Tensor{x}}
}

func BenchmarkLoopbackGRPCRaw(b *testing.B) {
	for _, n := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchGRPC(b, grpcapi.EncodeRequest(fraudRequest(n))) })
	}
}

// BenchmarkLoopbackNativeRaw is BenchmarkLoopbackGRPCRaw against grpc-go's
// server on its own port (grpcserver.New) rather than the Connect handler.
func BenchmarkLoopbackNativeRaw(b *testing.B) {
	for _, n := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchNative(b, grpcapi.EncodeRequest(fraudRequest(n))) })
	}
}

func BenchmarkLoopbackGRPCTyped(b *testing.B) {
	for _, n := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			msg := grpcapi.EncodeRequest(fraudRequest(n))
			x, _ := serving.Values[float32](fraudRequest(n).Inputs[0])
			msg.RawInputContents = nil
			msg.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: x}
			benchGRPC(b, msg)
		})
	}
}

// BenchmarkHandlerREST and BenchmarkHandlerGRPC call the handlers directly
// (no network, an httptest recorder): the cost of each protocol's handler,
// decode to encode, on the fraud request.
func BenchmarkHandlerREST(b *testing.B) {
	for _, n := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchHandlerREST(b, fraudJSONRows(n)) })
	}
}

func benchHandlerREST(b *testing.B, body string) {
	rest := httpapi.New()
	rest.Handle("fraud", fraudLike())
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v2/models/fraud/infer", strings.NewReader(body))
		w := httptest.NewRecorder()
		rest.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkHandlerGRPC(b *testing.B) {
	for _, n := range benchRows {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchHandlerGRPC(b, grpcapi.EncodeRequest(fraudRequest(n))) })
	}
}

func benchHandlerGRPC(b *testing.B, req *pb.ModelInferRequest) {
	rest := httpapi.New()
	rest.Handle("fraud", fraudLike())
	h := grpcapi.New(rest)
	msg, _ := proto.Marshal(req)
	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	body = append(body, msg...)
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

// BenchmarkNativeWindows compares grpc-go's flow control as grpcserver.New
// leaves it (BDP-estimated windows) against static windows of 1 MiB per
// stream and 16 MiB per connection, 64 callers on one connection, side
// by side.
func BenchmarkNativeWindows(b *testing.B) {
	for _, rows := range append(benchRows, 16384) { // and 512 KiB messages
		for _, static := range []bool{false, true} {
			b.Run(fmt.Sprintf("rows=%d/static=%v", rows, static), func(b *testing.B) {
				rest := httpapi.New()
				if err := rest.Handle("fraud", fraudLike()); err != nil {
					b.Fatal(err)
				}
				var opts []grpcapi.Option
				if static {
					opts = append(opts, grpcserver.WithServerOptions(grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(16<<20)))
				}
				benchGRPCAt(b, serveNative(b, rest, opts...), grpcapi.EncodeRequest(fraudRequest(rows)))
			})
		}
	}
}

package remote_test

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) {
	// The server extracts, and the client injects, with the global
	// propagator; W3C trace context, as an OpenTelemetry setup has it.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// server is a servekit server on loopback: REST and gRPC on one port, as
// examples/realtime serves them.
type server struct {
	addr   string
	native string       // grpc:// of servekit's grpc-go server (serve only)
	conns  atomic.Int64 // connections accepted
}

func (s *server) rest() string { return "http://" + s.addr }
func (s *server) grpc() string { return "grpc://" + s.addr }

// serve serves p as model name (and any more name, predictor pairs) until
// the test ends.
func serve(t testing.TB, name string, p serving.Predictor, opts ...httpapi.ModelOption) *server {
	t.Helper()
	h := httpapi.New()
	if err := h.Handle(name, p, opts...); err != nil {
		t.Fatal(err)
	}
	s := serveHandler(t, grpcapi.New(h, grpcapi.WithFallback(h)))
	gs := grpcserver.New(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-done; err != nil {
			t.Errorf("grpc-go Serve: %v", err)
		}
	})
	s.native = "grpc://" + ln.Addr().String()
	return s
}

func serveHandler(t testing.TB, h http.Handler) *server {
	t.Helper()
	s := new(server)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.Protocols = grpcapi.Protocols()
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	s.addr = ts.Listener.Addr().String()
	return s
}

func dial(t testing.TB, target, model string, opts ...remote.Option) *remote.Predictor {
	t.Helper()
	p, err := remote.Dial(context.Background(), target, model, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// protocols are the ways the client talks: REST with JSON (the default
// threshold, small requests), REST with binary tensors both ways, REST
// JSON only, gRPC to the Connect handler on the REST port, gRPC to
// servekit's grpc-go server on a port of its own.
type protocol struct {
	name         string
	grpc, native bool
	opts         []remote.Option
}

var protocols = []protocol{
	{"rest", false, false, nil},
	{"rest-binary", false, false, []remote.Option{remote.WithBinaryThreshold(0)}},
	{"rest-json", false, false, []remote.Option{remote.WithBinaryThreshold(-1)}},
	{"grpc", true, false, nil},
	{"grpc-native", true, true, nil},
}

func (pr protocol) target(s *server) string {
	if pr.native {
		return s.native
	}
	return target(s, pr.grpc)
}

func target(s *server, grpc bool) string {
	if grpc {
		return s.grpc()
	}
	return s.rest()
}

func TestConformance(t *testing.T) {
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			srv := serve(t, "linear", servingtest.Linear(4))
			servingtest.Conformance(t, servingtest.Config{
				New: func(t *testing.T) serving.Predictor {
					p, err := remote.Dial(context.Background(), pr.target(srv), "linear", pr.opts...)
					if err != nil {
						t.Fatal(err)
					}
					return p
				},
				Request:       func() *serving.Request { return servingtest.Rows(4, 3, 0.5) },
				Deterministic: true,
			})
		})
	}
}

// echo answers with its inputs as outputs: the server writes back what
// it read, so a difference is the client's or the codec's.
func echo() *servingtest.Fake {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: req.Inputs}, nil
	})
}

// everyType is one tensor of every datatype, edge values included: NaN
// with a payload, signed zeros, infinities, subnormals, extremes, BYTES
// that are empty, binary and not UTF-8.
func everyType(t testing.TB) []serving.Tensor {
	t.Helper()
	must := func(x serving.Tensor, err error) serving.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	nan32 := math.Float32frombits(0x7fc00123)
	nan64 := math.Float64frombits(0x7ff8000000000abc)
	return []serving.Tensor{
		must(serving.NewTensor("bool", []int64{3}, []bool{true, false, true})),
		must(serving.NewTensor("u8", []int64{3}, []uint8{0, 1, 255})),
		must(serving.NewTensor("u16", []int64{3}, []uint16{0, 1, 65535})),
		must(serving.NewTensor("u32", []int64{3}, []uint32{0, 1, math.MaxUint32})),
		must(serving.NewTensor("u64", []int64{3}, []uint64{0, 1 << 53, math.MaxUint64})),
		must(serving.NewTensor("i8", []int64{3}, []int8{math.MinInt8, 0, math.MaxInt8})),
		must(serving.NewTensor("i16", []int64{3}, []int16{math.MinInt16, -1, math.MaxInt16})),
		must(serving.NewTensor("i32", []int64{3}, []int32{math.MinInt32, -1, math.MaxInt32})),
		must(serving.NewTensor("i64", []int64{3}, []int64{math.MinInt64, 1<<53 + 1, math.MaxInt64})),
		must(serving.NewFP16("f16", []int64{5}, []uint16{0x0001, 0x8000, 0x7bff, 0x3555, 0xfbff})),
		must(serving.NewBF16("bf16", []int64{5}, []uint16{0x0001, 0x8000, 0x7f7f, 0x3eab, 0xff7f})),
		must(serving.NewTensor("f32", []int64{2, 3}, []float32{float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32, 0.1, -1 / 3.0, 16777217})),
		must(serving.NewTensor("f64", []int64{2, 2}, []float64{math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64, 0.1})),
		must(serving.NewStrings("bytes", []int64{3}, []string{"", "héllo", "a\x00b"})),
		// The values JSON cannot carry: they go binary unless the client
		// sends JSON only (then NaN's payload is lost, non-UTF-8 refused).
		must(serving.NewTensor("f32nan", []int64{3}, []float32{nan32, float32(math.Inf(1)), float32(math.Inf(-1))})),
		must(serving.NewTensor("f64nan", []int64{2}, []float64{nan64, math.Inf(-1)})),
		must(serving.NewFP16("f16nan", []int64{2}, []uint16{0x7e01, 0xfc00})),
		must(serving.NewStrings("raw", []int64{2}, []string{"\xff\xfe", "\x80"})),
	}
}

// raw is a tensor as bits: what "bit for bit" compares.
type raw struct {
	Name  string
	Type  serving.DataType
	Shape []int64
	Bits  []byte
}

func bits(ts []serving.Tensor) []raw {
	out := make([]raw, len(ts))
	for i, t := range ts {
		out[i] = raw{t.Name, t.DataType, t.Shape, t.AppendRaw(nil)}
	}
	return out
}

// TestBitForBit: every datatype, edge values included, comes back from a
// servekit server through the client exactly as the in-process Predictor
// answers it, over every protocol; JSON only loses exactly what JSON
// cannot say.
func TestBitForBit(t *testing.T) {
	local := echo()
	srv := serve(t, "echo", local)
	all := everyType(t)
	want, err := local.Predict(context.Background(), &serving.Request{ID: "r1", Inputs: all})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			p := dial(t, pr.target(srv), "echo", pr.opts...)
			in := all
			if pr.name == "rest-json" {
				in = all[:len(all)-4] // the inexact values: below
			}
			got, err := p.Predict(context.Background(), &serving.Request{ID: "r1", Inputs: in})
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != "r1" || got.Model != "echo" {
				t.Errorf("id %q model %q, want r1 echo", got.ID, got.Model)
			}
			if g, w := bits(got.Outputs), bits(want.Outputs[:len(in)]); !reflect.DeepEqual(g, w) {
				for i := range w {
					if i >= len(g) || !reflect.DeepEqual(g[i], w[i]) {
						t.Errorf("output %d:\n got %+v\nwant %+v", i, g[min(i, len(g)-1)], w[i])
					}
				}
			}
		})
	}
	t.Run("rest-json-inexact", func(t *testing.T) {
		p := dial(t, srv.rest(), "echo", remote.WithBinaryThreshold(-1))
		got, err := p.Predict(context.Background(), &serving.Request{Inputs: all[len(all)-4 : len(all)-1]})
		if err != nil {
			t.Fatal(err)
		}
		f32, _ := serving.Values[float32](got.Outputs[0])
		if !math.IsNaN(float64(f32[0])) || !math.IsInf(float64(f32[1]), 1) || !math.IsInf(float64(f32[2]), -1) {
			t.Errorf("non-finite FP32 through JSON: %v", f32)
		}
		_, err = p.Predict(context.Background(), &serving.Request{Inputs: all[len(all)-1:]})
		if serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("BYTES that are not UTF-8 as JSON: %v, want InvalidArgument", err)
		}
	})
}

// TestONNXBitForBit: the demo model served by servekit answers through the
// client, over every protocol, exactly as it answers in process.
func TestONNXBitForBit(t *testing.T) {
	m := orttest.Fraud(t)
	srv := serve(t, "fraud", m)
	x, err := serving.NewTensor(m.Metadata().Inputs[0].Name, []int64{2, 8}, []float32{
		0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0, -0.4,
		1e-7, 3.4e38, -3.4e38, 0.1, 0.2, 0.3, float32(math.Copysign(0, -1)), 1})
	if err != nil {
		t.Fatal(err)
	}
	req := &serving.Request{Inputs: []serving.Tensor{x}}
	want, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range protocols {
		p := dial(t, pr.target(srv), "fraud", pr.opts...)
		got, err := p.Predict(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(bits(got.Outputs), bits(want.Outputs)) {
			t.Errorf("%s: got %+v\nwant %+v", pr.name, got.Outputs, want.Outputs)
		}
	}
}

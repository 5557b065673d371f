package remote_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip/oipjson"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestRESTChoosesBinary: small requests go as JSON, large ones and ones
// JSON cannot carry exactly as binary tensors; answers come binary unless
// the client asks for JSON only.
func TestRESTChoosesBinary(t *testing.T) {
	type seen struct{ reqBinary, respBinary bool }
	infers := make(chan seen, 1)
	h := httpapi.New()
	if err := h.Handle("linear", servingtest.Linear(4)); err != nil {
		t.Fatal(err)
	}
	srv := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Method == http.MethodPost {
			infers <- seen{r.Header.Get(oipjson.HeaderContentLength) != "", w.Header().Get(oipjson.HeaderContentLength) != ""}
		}
	}))
	nan := servingtest.Rows(4, 1, 0)
	x, _ := serving.Values[float32](nan.Inputs[0])
	x[2] = float32(math.NaN())
	for _, c := range []struct {
		name string
		opts []remote.Option
		req  *serving.Request
		want seen
	}{
		{"small", nil, servingtest.Rows(4, 2, 0), seen{false, true}},
		{"large", nil, servingtest.Rows(4, 1100, 0), seen{true, true}}, // 17.6 KB of FP32
		{"nan", nil, nan, seen{true, true}},                            // JSON has no NaN
		{"threshold", []remote.Option{remote.WithBinaryThreshold(32)}, servingtest.Rows(4, 2, 0), seen{true, true}},
		{"json only", []remote.Option{remote.WithBinaryThreshold(-1)}, servingtest.Rows(4, 1100, 0), seen{false, false}},
	} {
		p := dial(t, srv.rest(), "linear", c.opts...)
		if _, err := p.Predict(context.Background(), c.req); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := <-infers; got != c.want {
			t.Errorf("%s: binary request %v, answer %v; want %v, %v", c.name, got.reqBinary, got.respBinary, c.want.reqBinary, c.want.respBinary)
		}
	}
}

// TestErrorsMapped: the server's statuses come back as serving codes, the
// retry delay of 429 and 503 with them, over REST and gRPC alike, so
// batch/job and limit back off as they would in process.
func TestErrorsMapped(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		code  serving.Code
		retry time.Duration
	}{
		{"overloaded", &serving.Error{Code: serving.ResourceExhausted, RetryAfter: 3 * time.Second}, serving.ResourceExhausted, 3 * time.Second},
		{"unavailable", &serving.Error{Code: serving.Unavailable, RetryAfter: 2 * time.Second}, serving.Unavailable, 2 * time.Second},
		{"invalid", serving.Errorf(serving.InvalidArgument, "bad row 3"), serving.InvalidArgument, 0},
		{"not found", serving.Errorf(serving.NotFound, "no output z"), serving.NotFound, 0},
		{"internal", serving.Errorf(serving.Internal, "boom"), serving.Internal, 0},
		{"unimplemented", serving.Errorf(serving.Unimplemented, "no"), serving.Unimplemented, 0},
	} {
		srv := serve(t, "m", servingtest.Failing(c.err))
		for _, tg := range []string{srv.rest(), srv.grpc(), srv.native} {
			p := dial(t, tg, "m", remote.WithMetadata(serving.Metadata{}))
			_, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0))
			if serving.CodeOf(err) != c.code || serving.RetryAfterOf(err) != c.retry {
				t.Errorf("%s (%s): %v: code %v retry %v, want %v %v", c.name, tg, err, serving.CodeOf(err), serving.RetryAfterOf(err), c.code, c.retry)
			}
			if c.code == serving.InvalidArgument && !strings.Contains(err.Error(), "bad row 3") {
				t.Errorf("%s: %v lacks the server's message", c.name, err)
			}
		}
	}

	// No model of that name: Dial fails with NotFound. Nothing listening:
	// Unavailable, which callers retry.
	srv := serve(t, "m", servingtest.Linear(4))
	for _, tg := range []string{srv.rest(), srv.grpc()} {
		if _, err := remote.Dial(context.Background(), tg, "nope"); serving.CodeOf(err) != serving.NotFound {
			t.Errorf("%s: Dial of a missing model: %v, want NotFound", tg, err)
		}
	}
	for _, tg := range []string{"http://127.0.0.1:1", "grpc://127.0.0.1:1"} {
		if _, err := remote.Dial(context.Background(), tg, "m"); serving.CodeOf(err) != serving.Unavailable {
			t.Errorf("%s: Dial with nothing listening: %v, want Unavailable", tg, err)
		}
	}
	for _, tg := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := remote.Dial(context.Background(), tg, "m"); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("target %q: %v, want InvalidArgument", tg, err)
		}
	}
}

// TestPropagation: the deadline becomes the protocol's timeout, the
// routing key and the trace context reach the server's Predictor, and a
// pinned version answers.
func TestPropagation(t *testing.T) {
	type call struct {
		key     string
		version string
		trace   trace.TraceID
		left    time.Duration
	}
	calls := make(chan call, 1)
	spy := func(v string) serving.Predictor {
		return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
			dl, _ := ctx.Deadline()
			calls <- call{req.Key, v, trace.SpanContextFromContext(ctx).TraceID(), time.Until(dl)}
			out, _ := serving.NewTensor("y", []int64{1}, []float32{1})
			return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{out}}, nil
		})
	}
	h := httpapi.New()
	for _, v := range []string{"1", "2"} {
		if err := h.Handle("m", spy(v), httpapi.Version(v)); err != nil {
			t.Fatal(err)
		}
	}
	srv := serveHandler(t, grpcapi.New(h, grpcapi.WithFallback(h)))
	tid := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	for _, grpc := range []bool{false, true} {
		for _, pin := range []string{"", "2"} {
			var opts []remote.Option
			if pin != "" {
				opts = append(opts, remote.WithVersion(pin))
			}
			p := dial(t, target(srv, grpc), "m", opts...)
			ctx, cancel := context.WithTimeout(trace.ContextWithRemoteSpanContext(context.Background(), sc), time.Hour)
			resp, err := p.Predict(ctx, &serving.Request{Key: "user-7", Version: "ignored", Inputs: servingtest.Rows(1, 1, 0).Inputs})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			c := <-calls
			wantV := pin
			if pin == "" {
				wantV = "1" // the first registered is the default
			}
			if c.key != "user-7" || c.trace != tid || c.version != wantV || resp.Version != wantV {
				t.Errorf("grpc %v pin %q: key %q trace %v version %q answered %q; want user-7 %v %q", grpc, pin, c.key, c.trace, c.version, resp.Version, tid, wantV)
			}
			if c.left <= 59*time.Minute || c.left > time.Hour {
				t.Errorf("grpc %v: the server's deadline is %v away, want the client's hour", grpc, c.left)
			}
		}
	}
}

// TestHealthAndMetadata: the server's and the model's health and
// metadata, over both protocols.
func TestHealthAndMetadata(t *testing.T) {
	srv := serve(t, "linear", servingtest.Linear(4), httpapi.Version("3"))
	for _, grpc := range []bool{false, true} {
		p := dial(t, target(srv, grpc), "linear", remote.WithVersion("3"))
		ctx := context.Background()
		live, err1 := p.ServerLive(ctx)
		ready, err2 := p.ServerReady(ctx)
		mready, err3 := p.ModelReady(ctx)
		if !live || !ready || !mready || err1 != nil || err2 != nil || err3 != nil {
			t.Errorf("grpc %v: live %v ready %v model ready %v (%v %v %v)", grpc, live, ready, mready, err1, err2, err3)
		}
		sm, err := p.ServerMetadata(ctx)
		if err != nil || sm.Name == "" || len(sm.Extensions) == 0 {
			t.Errorf("grpc %v: server metadata %+v %v", grpc, sm, err)
		}
		md, versions, err := p.ModelMetadata(ctx)
		if err != nil || md.Name != "linear" || len(md.Inputs) != 1 || md.Inputs[0].DataType != serving.FP32 || len(md.Outputs) != 1 || len(versions) != 1 || versions[0] != "3" {
			t.Errorf("grpc %v: model metadata %+v %q %v", grpc, md, versions, err)
		}
		if d := p.Metadata(); d.Version != "3" || len(d.Inputs[0].Shape) != 2 || d.Inputs[0].Shape[1] != 4 {
			t.Errorf("grpc %v: Metadata() %+v", grpc, d)
		}
		p.Close()
		if _, err := p.ServerLive(ctx); err != serving.ErrClosed {
			t.Errorf("ServerLive after Close: %v", err)
		}
	}
	// A model that is not ready: false, no error.
	closed := servingtest.Linear(4)
	closed.Close()
	srv = serve(t, "down", closed)
	for _, grpc := range []bool{false, true} {
		p := dial(t, target(srv, grpc), "down")
		if ok, err := p.ModelReady(context.Background()); ok || err != nil {
			t.Errorf("grpc %v: a closed model: ready %v, %v", grpc, ok, err)
		}
	}
}

// TestConnectionReuse: concurrent callers share a few pooled connections
// (REST) or one multiplexed one (gRPC); nothing dials per request.
func TestConnectionReuse(t *testing.T) {
	for _, grpc := range []bool{false, true} {
		srv := serve(t, "linear", servingtest.Linear(4))
		p := dial(t, target(srv, grpc), "linear")
		const workers, calls = 8, 50
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range calls {
					if _, err := p.Predict(context.Background(), servingtest.Rows(4, 2, 0)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		// HTTP/1.1: a connection per concurrent caller, and a few more
		// where a caller's next request starts before net/http's read loop
		// has put its last connection back (it does so asynchronously,
		// after the body's end); not one per request.
		most := int64(2*workers + 1)
		if grpc {
			most = 1
		}
		if n := srv.conns.Load(); n > most {
			t.Errorf("grpc %v: %d connections for %d requests from %d goroutines, want at most %d", grpc, n, workers*calls, workers, most)
		}
	}
}

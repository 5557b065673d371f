package grpcserver_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
	"github.com/servekit/servekit/serving/grpcapi/internal/nativetest"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/servingtest"
)

// The RPCs' tests run against both servers in grpcapi's tests (which
// import this package); what only this server has is tested here.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// serveNative is nativetest.Serve.
var serveNative = nativetest.Serve

// grpcGo dials addr with grpc-go's client over plaintext HTTP/2.
func grpcGo(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// TestNativeHealth: grpc.health.v1.Health, as Kubernetes' gRPC probe and
// grpc-go's health client call it, answers for the server ("") and per
// model by name, follows readiness, and turns NOT_SERVING on drain.
func TestNativeHealth(t *testing.T) {
	defer grpcserver.SetHealthInterval(time.Millisecond)()
	srv := oip.NewServer()
	a, b := servingtest.Linear(2), servingtest.Linear(2)
	_ = srv.Handle("a", a)
	_ = srv.Handle("b", b)
	drain := make(chan struct{})
	hc := healthpb.NewHealthClient(grpcGo(t, serveNative(t, srv, grpcserver.WithDrain(drain))))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	check := func(service string) (healthpb.HealthCheckResponse_ServingStatus, codes.Code) {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return r.GetStatus(), status.Code(err)
	}
	serving_ := healthpb.HealthCheckResponse_SERVING
	for _, s := range []string{"", "inference.GRPCInferenceService", "a", "b"} {
		if st, code := check(s); st != serving_ || code != codes.OK {
			t.Errorf("Check(%q) = %v %v, want SERVING", s, st, code)
		}
	}
	if _, code := check("nope"); code != codes.NotFound {
		t.Errorf("Check of an unknown model: %v, want NotFound (what grpc-go's own health server answers)", code)
	}

	// A model that is not ready is NOT_SERVING, alone.
	b.Close()
	if st, _ := check("b"); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("closed model: %v, want NOT_SERVING", st)
	}
	if st, _ := check("a"); st != serving_ {
		t.Errorf("the other model: %v, want SERVING", st)
	}
	list, err := hc.List(ctx, &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]healthpb.HealthCheckResponse_ServingStatus{}
	for k, v := range list.GetStatuses() {
		got[k] = v.GetStatus()
	}
	if len(got) != 3 || got["a"] != serving_ || got["b"] != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("List: %v", got)
	}

	// Watch of a model not loaded yet: SERVICE_UNKNOWN, then SERVING once
	// it is, then NOT_SERVING and the end of the call on drain.
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "c"})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r.GetStatus()
	}
	if st := recv(); st != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("Watch before the model is loaded: %v", st)
	}
	_ = srv.Handle("c", servingtest.Linear(2))
	if st := recv(); st != serving_ {
		t.Fatalf("Watch after the model is loaded: %v", st)
	}
	close(drain)
	// The server sends NOT_SERVING and ends the call; grpc-go's client may
	// report the end before the last message when both arrive together, so
	// what is asserted is: nothing but NOT_SERVING, then Unavailable.
	for {
		r, err := w.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("Watch after drain: %v, want the call ended Unavailable", err)
			}
			break
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("Watch on drain: %v", r.GetStatus())
		}
	}
	for _, s := range []string{"", "a"} {
		if st, _ := check(s); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) while draining: %v", s, st)
		}
	}
}

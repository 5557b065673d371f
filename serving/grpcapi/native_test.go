package grpcapi_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	refpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestNativeReflection: server reflection answers what grpcurl asks for
// `list` and for calls without a .proto: the services, and the files that
// define the inference service, its imports included.
func TestNativeReflection(t *testing.T) {
	cc := grpcGo(t, serveNative(t, oip.NewServer()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := refpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *refpb.ServerReflectionRequest) *refpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := r.GetErrorResponse(); e != nil {
			t.Fatalf("reflection %v: %v", req, e)
		}
		return r
	}
	var names []string
	for _, s := range ask(&refpb.ServerReflectionRequest{MessageRequest: &refpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "inference.GRPCInferenceService") || !strings.Contains(got, "grpc.health.v1.Health") ||
		!strings.Contains(got, "grpc.reflection.v1.ServerReflection") {
		t.Errorf("services %s", got)
	}

	// The files, as grpcurl resolves them: the one defining the service,
	// then each import by name, until protodesc can build the service.
	files := map[string]*descriptorpb.FileDescriptorProto{}
	add := func(r *refpb.ServerReflectionResponse) {
		for _, b := range r.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				t.Fatal(err)
			}
			files[fd.GetName()] = fd
		}
	}
	add(ask(&refpb.ServerReflectionRequest{MessageRequest: &refpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "inference.GRPCInferenceService"}}))
	for missing := true; missing; {
		missing = false
		for _, fd := range files {
			for _, dep := range fd.GetDependency() {
				if files[dep] == nil {
					missing = true
					add(ask(&refpb.ServerReflectionRequest{MessageRequest: &refpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}}))
				}
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range files {
		set.File = append(set.File, fd)
	}
	reg, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("the reflected files do not build: %v", err)
	}
	d, err := reg.FindDescriptorByName("inference.GRPCInferenceService.ModelInfer")
	if err != nil {
		t.Fatalf("ModelInfer through reflection: %v", err)
	}
	if d.ParentFile().Path() != "grpc_predict_v2.proto" {
		t.Errorf("ModelInfer is in %s", d.ParentFile().Path())
	}
}

// TestNativeErrors: what the bounded decoder refuses keeps its code (grpc-go
// would make a codec's error Internal), an oversized message is
// ResourceExhausted, compressed or not, a panic is Internal and the server
// goes on, and metadata reaches the Predictor as over the Connect handler.
func TestNativeErrors(t *testing.T) {
	var panicked atomic.Bool
	rec := servingtest.NewRecorder(servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if req.ID == "panic" && panicked.CompareAndSwap(false, true) {
			panic("boom")
		}
		return &serving.Response{Outputs: req.Inputs}, nil
	}))
	cc := grpcGo(t, serveNative(t, models(t, "m", rec), grpcapi.WithMaxInputs(2), grpcapi.WithMaxMessageBytes(64<<10)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{1, 2})
	y, _ := serving.NewTensor("y", []int64{1, 2}, []float32{1, 2})
	z, _ := serving.NewTensor("z", []int64{1, 2}, []float32{1, 2})
	big, _ := serving.NewTensor("x", []int64{1, 32 << 10}, make([]float32, 32<<10)) // 128 KiB, zeros: gzip makes it small
	for _, c := range []struct {
		name string
		req  *serving.Request
		opts []grpc.CallOption
		want codes.Code
	}{
		{"too many inputs", &serving.Request{Model: "m", Inputs: []serving.Tensor{x, y, z}}, nil, codes.InvalidArgument},
		{"unknown model", &serving.Request{Model: "nope", Inputs: []serving.Tensor{x}}, nil, codes.NotFound},
		{"oversized", &serving.Request{Model: "m", Inputs: []serving.Tensor{big}}, nil, codes.ResourceExhausted},
		{"oversized inflated", &serving.Request{Model: "m", Inputs: []serving.Tensor{big}}, []grpc.CallOption{grpc.UseCompressor(gzip.Name)}, codes.ResourceExhausted},
		{"compressed", &serving.Request{Model: "m", Inputs: []serving.Tensor{x}}, []grpc.CallOption{grpc.UseCompressor(gzip.Name)}, codes.OK},
		{"panic", &serving.Request{Model: "m", ID: "panic", Inputs: []serving.Tensor{x}}, nil, codes.Internal},
		{"after the panic", &serving.Request{Model: "m", ID: "panic", Inputs: []serving.Tensor{x}}, nil, codes.OK},
	} {
		_, err := invokeInfer(ctx, cc, grpcapi.EncodeRequest(c.req), c.opts...)
		if got := status.Code(err); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	md := metadata.Pairs("x-routing-key", "user-7")
	if _, err := invokeInfer(metadata.NewOutgoingContext(ctx, md), cc, grpcapi.EncodeRequest(&serving.Request{Model: "m", Inputs: []serving.Tensor{x}})); err != nil {
		t.Fatal(err)
	}
	reqs := rec.Requests()
	if last := reqs[len(reqs)-1]; last.Key != "user-7" {
		t.Errorf("routing key %q, want the x-routing-key metadata", last.Key)
	}
}

// TestNativeStop: GracefulStop waits for the calls in flight, which
// complete, and a Watch call does not hold it once the drain began.
func TestNativeStop(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		started <- struct{}{}
		<-release
		return &serving.Response{Outputs: req.Inputs}, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	drain := make(chan struct{})
	s := grpcserver.New(models(t, "linear", slow), grpcserver.WithDrain(drain))
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	cc := grpcGo(t, ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	w, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		_, err := invokeInfer(ctx, cc, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)))
		answered <- err
	}()
	select {
	case <-started:
	case err := <-answered:
		t.Fatalf("answered before the model ran: %v", err)
	}
	close(drain)
	stopped := make(chan error, 1)
	go func() { stopped <- grpcserver.Shutdown(ctx, s) }()
	close(release)
	if err := <-answered; err != nil {
		t.Errorf("the call in flight at Shutdown: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		t.Errorf("Serve: %v", err)
	}
}

// TestNativeShutdownDeadline: a call that does not end holds Shutdown only
// until its context is done; then the server closes and says why.
func TestNativeShutdownDeadline(t *testing.T) {
	started := make(chan struct{}, 1)
	stuck := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		started <- struct{}{}
		<-ctx.Done() // until the server closes the call
		return nil, serving.ContextError(ctx, "stuck")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpcserver.New(models(t, "linear", stuck))
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	cc := grpcGo(t, ln.Addr().String())
	answered := make(chan error, 1)
	go func() {
		_, err := invokeInfer(context.Background(), cc, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)))
		answered <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := grpcserver.Shutdown(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown past its context: %v, want context.Canceled", err)
	}
	if err := <-answered; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("the stuck call: %v, want it cut off", err)
	}
	<-served
}

// TestNativeRawContentsInPlace: raw contents are read in place from
// grpc-go's pooled buffers and the buffers go back to the pool after each
// call; many concurrent calls of different contents, through an
// interceptor that keeps every message and without, each get their own
// contents back (a buffer given back too early would show another call's).
func TestNativeRawContentsInPlace(t *testing.T) {
	var kept []*pb.ModelInferRequest
	var mu sync.Mutex
	keep := grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		mu.Lock()
		kept = append(kept, req.(*pb.ModelInferRequest))
		mu.Unlock()
		return next(ctx, req)
	})
	// A codec passed in does not replace the bounded decoder (ModelInfer
	// would fail on every call).
	codec := grpcserver.WithServerOptions(grpc.ForceServerCodecV2(encoding.GetCodecV2("proto")))
	for _, opts := range [][]grpcapi.Option{{codec}, {grpcserver.WithServerOptions(keep)}} {
		cc := grpcGo(t, serveNative(t, models(t, "m", echo()), opts...))
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					v := float32(g*1000 + i)
					x, _ := serving.NewTensor("x", []int64{1, 256}, slices.Repeat([]float32{v}, 256))
					resp, err := invokeInfer(context.Background(), cc, grpcapi.EncodeRequest(&serving.Request{Model: "m", Inputs: []serving.Tensor{x}}))
					if err != nil {
						t.Error(err)
						return
					}
					out, err := grpcapi.DecodeResponse(resp)
					if err != nil {
						t.Error(err)
						return
					}
					got, _ := serving.Values[float32](out.Outputs[0])
					if slices.ContainsFunc(got, func(f float32) bool { return f != v }) {
						t.Errorf("call %v answered with another call's contents", v)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	if len(kept) != 400 {
		t.Fatalf("the interceptor saw %d calls", len(kept))
	}
	for _, m := range kept {
		x, err := serving.FromRaw("x", serving.FP32, []int64{1, 256}, m.GetRawInputContents()[0])
		if err != nil {
			t.Fatal(err)
		}
		f, _ := serving.Values[float32](x)
		if slices.ContainsFunc(f, func(v float32) bool { return v != f[0] }) {
			t.Fatal("a message an interceptor kept lost its raw contents to the pool")
		}
	}
}

// TestNativeInterceptorSeesModelInfer: an interceptor on grpc-go's server
// sees every ModelInfer call with its method and server, the decoded
// message when it decoded, and the call's own answer: a request that
// failed to decode still reaches the interceptor and answers
// InvalidArgument through it, not another call's outcome.
func TestNativeInterceptorSeesModelInfer(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	var seen []codes.Code
	icpt := grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if _, ok := req.(*pb.ModelInferRequest); !ok || info.Server == nil {
			t.Errorf("interceptor got %T, server %v", req, info.Server)
		}
		resp, err := next(ctx, req)
		mu.Lock()
		methods, seen = append(methods, info.FullMethod), append(seen, status.Code(err))
		mu.Unlock()
		return resp, err
	})
	addr := serveNative(t, models(t, "m", echo()), grpcserver.WithServerOptions(icpt))
	cc := grpcGo(t, addr)
	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{1, 2})
	if _, err := invokeInfer(context.Background(), cc, grpcapi.EncodeRequest(&serving.Request{Model: "m", Inputs: []serving.Tensor{x}})); err != nil {
		t.Fatal(err)
	}
	bad := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("\xff")) // model_name, not UTF-8
	err := cc.Invoke(context.Background(), "/inference.GRPCInferenceService/ModelInfer", bad, new(pb.ModelInferResponse), grpc.ForceCodecV2(wireCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("undecodable request: %v, want InvalidArgument", err)
	}
	want := []codes.Code{codes.OK, codes.InvalidArgument}
	if !slices.Equal(seen, want) || !slices.Equal(methods, []string{"/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ModelInfer"}) {
		t.Errorf("interceptor saw %v %v, want %v on ModelInfer", methods, seen, want)
	}
}

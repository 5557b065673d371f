package remote_test

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"reflect"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// peer is a second implementation of the protocol's gRPC service, sharing
// no code with servekit's server: grpc-go and the generated message types,
// its service descriptor written as protoc-gen-go-grpc writes one (the
// repository generates Connect's stubs, not grpc-go's), the tensors
// encoded by hand. Model "linear" is y = 2x + 1 on FP32 [n, 4] as
// servingtest.Linear computes it; "busy" is overloaded.
type peer struct {
	seen chan metadata.MD // each infer call's metadata
	left chan time.Duration
}

func (p *peer) infer(ctx context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	dl, _ := ctx.Deadline()
	select {
	case p.seen <- md:
	default:
	}
	select {
	case p.left <- time.Until(dl):
	default:
	}
	if in.ModelName == "busy" {
		st, _ := status.New(codes.ResourceExhausted, "queue full").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(4 * time.Second)})
		return nil, st.Err()
	}
	if in.ModelName != "linear" {
		return nil, status.Errorf(codes.NotFound, "no model %q", in.ModelName)
	}
	if len(in.Inputs) != 1 || in.Inputs[0].Datatype != "FP32" || len(in.RawInputContents) != 1 {
		return nil, status.Error(codes.InvalidArgument, "want one FP32 input in raw_input_contents")
	}
	x := in.RawInputContents[0]
	y := make([]byte, len(x))
	for i := 0; i+4 <= len(x); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(x[i:]))
		binary.LittleEndian.PutUint32(y[i:], math.Float32bits(2*v+1))
	}
	return &pb.ModelInferResponse{ModelName: "linear", ModelVersion: "1", Id: in.Id,
		Outputs:           []*pb.ModelInferResponse_InferOutputTensor{{Name: "y", Datatype: "FP32", Shape: in.Inputs[0].Shape}},
		RawOutputContents: [][]byte{y}}, nil
}

func unary[Req, Resp any](f func(context.Context, *Req) (*Resp, error)) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		return f(ctx, in)
	}
}

func (p *peer) desc() *grpc.ServiceDesc {
	linear := &pb.ModelMetadataResponse{Name: "linear", Versions: []string{"1"}, Platform: "grpc-go",
		Inputs:  []*pb.ModelMetadataResponse_TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
		Outputs: []*pb.ModelMetadataResponse_TensorMetadata{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 4}}}}
	return &grpc.ServiceDesc{
		ServiceName: "inference.GRPCInferenceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "ServerLive", Handler: unary(func(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
				return &pb.ServerLiveResponse{Live: true}, nil
			})},
			{MethodName: "ServerReady", Handler: unary(func(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
				return &pb.ServerReadyResponse{Ready: true}, nil
			})},
			{MethodName: "ModelReady", Handler: unary(func(_ context.Context, in *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
				return &pb.ModelReadyResponse{Ready: in.Name == "linear"}, nil
			})},
			{MethodName: "ServerMetadata", Handler: unary(func(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
				return &pb.ServerMetadataResponse{Name: "peer", Version: "0", Extensions: []string{}}, nil
			})},
			{MethodName: "ModelMetadata", Handler: unary(func(_ context.Context, in *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
				if in.Name != "linear" {
					return nil, status.Errorf(codes.NotFound, "no model %q", in.Name)
				}
				return linear, nil
			})},
			{MethodName: "ModelInfer", Handler: unary(p.infer)},
		},
	}
}

func grpcPeer(t *testing.T) (*peer, string) {
	t.Helper()
	p := &peer{seen: make(chan metadata.MD, 1), left: make(chan time.Duration, 1)}
	s := grpc.NewServer()
	s.RegisterService(p.desc(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return p, "grpc://" + ln.Addr().String()
}

// TestGRPCGoPeer: against a grpc-go server that shares no code with
// servekit's, the client is a conforming Predictor, answers bit for bit
// as the in-process model does, sends its deadline and routing key, and
// reads the server's retry delay.
func TestGRPCGoPeer(t *testing.T) {
	p, addr := grpcPeer(t)
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			c, err := remote.Dial(context.Background(), addr, "linear")
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Request:       func() *serving.Request { return servingtest.Rows(4, 3, -1.5) },
		Deterministic: true,
	})

	c := dial(t, addr, "linear")
	req := servingtest.Rows(4, 3, 0.1)
	x, _ := serving.Values[float32](req.Inputs[0])
	x[0], x[1], x[2] = float32(math.Copysign(0, -1)), math.MaxFloat32/4, math.SmallestNonzeroFloat32
	want, err := servingtest.Linear(4).Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	drain(p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	req.Key = "user-9"
	got, err := c.Predict(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(bits(got.Outputs), bits(want.Outputs)) || got.Version != "1" {
		t.Errorf("got %+v version %q\nwant %+v", bits(got.Outputs), got.Version, bits(want.Outputs))
	}
	if md, left := <-p.seen, <-p.left; len(md.Get("x-routing-key")) != 1 || md.Get("x-routing-key")[0] != "user-9" || left <= 59*time.Minute {
		t.Errorf("the peer saw metadata %v and a deadline %v away", md, left)
	}
	if ok, err := c.ModelReady(ctx); !ok || err != nil {
		t.Errorf("ModelReady: %v %v", ok, err)
	}
	if sm, err := c.ServerMetadata(ctx); sm.Name != "peer" || err != nil {
		t.Errorf("ServerMetadata: %+v %v", sm, err)
	}

	busy := dial(t, addr, "busy", remote.WithMetadata(serving.Metadata{}))
	_, err = busy.Predict(ctx, req)
	if serving.CodeOf(err) != serving.ResourceExhausted || serving.RetryAfterOf(err) != 4*time.Second {
		t.Errorf("busy: %v (code %v, retry %v), want ResourceExhausted after 4s", err, serving.CodeOf(err), serving.RetryAfterOf(err))
	}
	if _, err := remote.Dial(ctx, addr, "nope"); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("Dial of a model the peer lacks: %v", err)
	}
}

func drain(p *peer) {
	select {
	case <-p.seen:
	default:
	}
	select {
	case <-p.left:
	default:
	}
}

package grpcapi_test

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/servingtest"
)

// grpcGo dials addr with google.golang.org/grpc, a client this project did
// not write, over plaintext HTTP/2 (prior knowledge, as grpc-go does).
func grpcGo(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func invokeInfer(ctx context.Context, cc *grpc.ClientConn, msg *pb.ModelInferRequest, opts ...grpc.CallOption) (*pb.ModelInferResponse, error) {
	out := new(pb.ModelInferResponse)
	err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, msg, out, opts...)
	return out, err
}

// servers are the two gRPC servers of one set of RPCs: the Connect
// handler on the REST port and grpc-go's (grpcserver.New).
func servers(addr, native string) []struct{ name, addr string } {
	return []struct{ name, addr string }{{"connect", addr}, {"native", native}}
}

// TestGRPCGoClientMatchesREST: the demo model answers grpc-go, with raw and
// with typed inputs, through both servers, exactly as it answers REST, bit
// for bit; bad input gets the same class of error.
func TestGRPCGoClientMatchesREST(t *testing.T) {
	addr, native := demo(t)
	for _, s := range servers(addr, native) {
		t.Run(s.name, func(t *testing.T) { grpcGoMatchesREST(t, addr, grpcGo(t, s.addr)) })
	}
}

func grpcGoMatchesREST(t *testing.T, addr string, cc *grpc.ClientConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	status200, want := restInfer(t, addr, "fraud", "", "features", "FP32", []int64{3, 8}, fraudRows)
	if status200 != 200 || len(want) != 3*4 {
		t.Fatalf("REST: %d, %d bytes", status200, len(want))
	}
	x, err := serving.NewTensor("features", []int64{3, 8}, flat(fraudRows))
	if err != nil {
		t.Fatal(err)
	}
	raw := grpcapi.EncodeRequest(&serving.Request{Model: "fraud", ID: "r1", Inputs: []serving.Tensor{x}})
	typedMsg := &pb.ModelInferRequest{ModelName: "fraud", ModelVersion: "1", Inputs: []*pb.ModelInferRequest_InferInputTensor{
		{Name: "features", Datatype: "FP32", Shape: []int64{3, 8}, Contents: &pb.InferTensorContents{Fp32Contents: flat(fraudRows)}},
	}}
	for name, msg := range map[string]*pb.ModelInferRequest{"raw": raw, "typed": typedMsg} {
		resp, err := invokeInfer(ctx, cc, msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(resp.RawOutputContents) != 1 || len(resp.Outputs) != 1 || resp.Outputs[0].Name != "score" || resp.Outputs[0].Datatype != "FP32" {
			t.Fatalf("%s: answer %v", name, resp)
		}
		if got := resp.RawOutputContents[0]; hexBits(got) != hexBits(want) {
			t.Errorf("%s: gRPC bits %x, REST bits %x", name, got, want)
		}
		if resp.ModelName != "fraud" || resp.ModelVersion != "1" || resp.Id != msg.Id {
			t.Errorf("%s: answer names %s/%s id %q", name, resp.ModelName, resp.ModelVersion, resp.Id)
		}
	}

	for _, bc := range badCases {
		t.Run(bc.name, func(t *testing.T) {
			st, _ := restInfer(t, addr, bc.model, bc.version, bc.input, bc.dtype, bc.shape, bc.data)
			msg := &pb.ModelInferRequest{ModelName: bc.model, ModelVersion: bc.version, Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: bc.input, Datatype: bc.dtype, Shape: bc.shape}}}
			switch d := bc.data.(type) {
			case []float32:
				if bc.dtype == "FP64" {
					f := make([]float64, len(d))
					for i, v := range d {
						f[i] = float64(v)
					}
					msg.Inputs[0].Contents = &pb.InferTensorContents{Fp64Contents: f}
				} else {
					msg.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: d}
				}
			}
			_, err := invokeInfer(ctx, cc, msg)
			got := status.Code(err)
			if st != bc.wantStatus || got.String() != bc.wantGRPC {
				t.Errorf("REST %d, gRPC %v (%v); want %d and %s", st, got, err, bc.wantStatus, bc.wantGRPC)
			}
		})
	}
}

// TestGRPCGoClientRPCs covers the other RPCs, streaming, metadata and the
// retry details as grpc-go reads them.
func TestGRPCGoClientRPCs(t *testing.T) {
	addr, native := demo(t)
	for _, s := range servers(addr, native) {
		t.Run(s.name, func(t *testing.T) { grpcGoRPCs(t, grpcGo(t, s.addr)) })
	}
}

func grpcGoRPCs(t *testing.T, cc *grpc.ClientConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	live, ready, mready := new(pb.ServerLiveResponse), new(pb.ServerReadyResponse), new(pb.ModelReadyResponse)
	md := new(pb.ModelMetadataResponse)
	for _, c := range []struct {
		method   string
		in, out  any
		wantFail bool
	}{
		{inferencepbconnect.GRPCInferenceServiceServerLiveProcedure, &pb.ServerLiveRequest{}, live, false},
		{inferencepbconnect.GRPCInferenceServiceServerReadyProcedure, &pb.ServerReadyRequest{}, ready, false},
		{inferencepbconnect.GRPCInferenceServiceModelReadyProcedure, &pb.ModelReadyRequest{Name: "fraud", Version: "1"}, mready, false},
		{inferencepbconnect.GRPCInferenceServiceModelMetadataProcedure, &pb.ModelMetadataRequest{Name: "fraud"}, md, false},
	} {
		if err := cc.Invoke(ctx, c.method, c.in, c.out); err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
	}
	if !live.Live || !ready.Ready || !mready.Ready {
		t.Errorf("live %v ready %v model ready %v", live.Live, ready.Ready, mready.Ready)
	}
	if md.Platform != "onnxruntime_onnx" || len(md.Inputs) != 1 || md.Inputs[0].Name != "features" || md.Inputs[0].Datatype != "FP32" || len(md.Versions) != 1 {
		t.Errorf("metadata %v", md)
	}

	stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, inferencepbconnect.GRPCInferenceServiceModelStreamInferProcedure)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := serving.NewTensor("features", []int64{1, 8}, fraudRows[0])
	for _, m := range []string{"fraud", "nope", "fraud"} {
		if err := stream.SendMsg(grpcapi.EncodeRequest(&serving.Request{Model: m, Inputs: []serving.Tensor{x}})); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i := 0; ; i++ {
		r := new(pb.ModelStreamInferResponse)
		err := stream.RecvMsg(r)
		if err == io.EOF {
			if i != 3 {
				t.Errorf("%d stream answers, want 3", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if failed := r.ErrorMessage != ""; failed != (i == 1) {
			t.Errorf("stream answer %d: %v", i, r)
		}
	}
}

// TestGRPCGoRetryInfo: an overloaded model's retry hint reaches grpc-go as a
// google.rpc.RetryInfo detail and retry-after metadata.
func TestGRPCGoRetryInfo(t *testing.T) {
	over := serving.Errorf(serving.ResourceExhausted, "queue full: %w", serving.ErrOverloaded)
	over.RetryAfter = 2 * time.Second
	rest := models(t, "linear", servingtest.Failing(over))
	for _, s := range servers(serveAddr(t, grpcapi.New(rest)), serveNative(t, rest)) {
		t.Run(s.name, func(t *testing.T) { grpcGoRetryInfo(t, grpcGo(t, s.addr)) })
	}
}

func grpcGoRetryInfo(t *testing.T, cc *grpc.ClientConn) {
	var trailer, hdr metadata.MD
	_, err := invokeInfer(context.Background(), cc, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)), grpc.Trailer(&trailer), grpc.Header(&hdr))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || st.Message() == "" {
		t.Fatalf("status %v", st)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 2*time.Second {
		t.Errorf("RetryInfo delay %v, want 2s (details %v)", delay, st.Details())
	}
	if v := append(trailer.Get(grpcapi.RetryAfterKey), hdr.Get(grpcapi.RetryAfterKey)...); len(v) == 0 || v[0] != "2" {
		t.Errorf("retry-after metadata %v, want 2", v)
	}
}

// TestGRPCGoDeadline: grpc-go's deadline reaches the Predictor's context
// (as grpc-timeout), and a model slower than it is DeadlineExceeded.
func TestGRPCGoDeadline(t *testing.T) {
	seen := make(chan time.Duration, 1)
	slow := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		d, _ := ctx.Deadline()
		seen <- time.Until(d)
		<-ctx.Done()
		return nil, serving.ContextError(ctx, "slow model")
	})
	rest := models(t, "linear", slow)
	for _, s := range servers(serveAddr(t, grpcapi.New(rest)), serveNative(t, rest)) {
		t.Run(s.name, func(t *testing.T) {
			cc := grpcGo(t, s.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := invokeInfer(ctx, cc, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)))
			if c := status.Code(err); c != codes.DeadlineExceeded {
				t.Errorf("slow model: %v, want DeadlineExceeded", err)
			}
			select {
			case d := <-seen:
				if d <= 0 || d > 2*time.Second {
					t.Errorf("the Predictor's deadline was %v away, want the client's 2s", d)
				}
			default:
				t.Error("the request never reached the model")
			}
		})
	}
}

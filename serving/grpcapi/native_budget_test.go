package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/servingtest"
)

// wireCodec is a client codec that sends a message's bytes as they are,
// so that a grpc-go client can send what proto.Marshal never would. It
// says "proto", the content subtype the server decodes.
type wireCodec struct{}

func (wireCodec) Name() string { return "proto" }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (wireCodec) Unmarshal(mem.BufferSlice, any) error { return nil } // the answer is not read

// TestNativeDecodeBudget is TestDecodeBudget for grpc-go's server: every
// hostile request that a grpc-go client can send (not Connect JSON, no
// lying frame length: grpc-go frames what it sends; gzip is grpc-go's own
// inflation, bounded by MaxRecvMsgSize) costs client and server together
// within serving.DecodeBudget of the message plus what the in-process
// client and both transports take: the message copied into the client's
// frames and read into the server's buffers (2 × n) and 256 KiB of
// connection state. Every answer keeps its code: none is Internal.
func TestNativeDecodeBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts under -race are skewed; make test runs this without it")
	}
	size := 512 << 10
	if testing.Short() {
		size = 128 << 10
	}
	one, _ := serving.NewTensor("y", []int64{1}, []float32{1})
	m := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		return &serving.Response{Outputs: []serving.Tensor{one}}, nil
	})
	cc, err := grpc.NewClient(serveNative(t, models(t, "m", m), grpcapi.WithMaxElements(1<<22)),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(wireCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	worst := 0.0
	for _, a := range hostileRequests(size) {
		if a.json || a.gzip || a.declare > 0 {
			continue
		}
		var callErr error
		got := alloctest.Bytes(2, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			callErr = cc.Invoke(ctx, "/inference.GRPCInferenceService/ModelInfer", a.msg, new(pb.ModelInferResponse))
		})
		n := len(a.msg)
		budget := serving.DecodeBudget(int64(n)) + 2*int64(n) + 256<<10
		ratio := float64(got) / float64(n)
		t.Logf("%-10s %-40s %9d B -> %9d B (%5.2f x) %v", a.transport, a.name, n, got, ratio, status.Code(callErr))
		if int64(got) > budget {
			t.Errorf("%s %s: allocated %d bytes, over %d", a.transport, a.name, got, budget)
		}
		if c := status.Code(callErr); c == codes.Internal || c == codes.Unknown {
			t.Errorf("%s %s: %v", a.transport, a.name, callErr)
		}
		if n >= size/2 {
			worst = max(worst, ratio)
		}
	}
	t.Logf("worst ratio at %d KiB: %.2f", size>>10, worst)
}

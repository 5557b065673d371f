package grpcapi_test

import (
	"log/slog"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// Every ai.onnx.ml fixture answers over gRPC exactly what ONNX Runtime
// answers when run directly, its inputs sent raw or typed.
func TestTabularGRPC(t *testing.T) {
	orttest.Require(t)
	for _, c := range tabulartest.Servable(t) {
		t.Run(c.Name, func(t *testing.T) {
			m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			cl := client(t, c.Name, m)
			for _, raw := range []bool{true, false} {
				msg := grpcapi.EncodeRequest(c.Request())
				if !raw {
					typedInputs(t, msg, c.Inputs)
				}
				resp, err := infer(cl, msg)
				if err != nil {
					t.Fatalf("raw %v: %v", raw, err)
				}
				out, err := grpcapi.DecodeResponse(resp)
				if err != nil {
					t.Fatal(err)
				}
				tabulartest.CheckResponse(t, c.Path, c.Inputs, m.Metadata(), out.Outputs)
			}
		})
	}
}

// typedInputs moves a request's inputs from raw_input_contents to each tensor's
// typed contents.
func typedInputs(t *testing.T, msg *pb.ModelInferRequest, ts []serving.Tensor) {
	t.Helper()
	msg.RawInputContents = nil
	for i, x := range ts {
		c := &pb.InferTensorContents{}
		switch d := x.Data().(type) {
		case []float32:
			c.Fp32Contents = d
		case []int64:
			c.Int64Contents = d
		case [][]byte:
			c.BytesContents = d
		default:
			t.Fatalf("input %s: %v", x.Name, x.DataType)
		}
		msg.Inputs[i].Contents = c
	}
}

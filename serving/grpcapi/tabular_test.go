package grpcapi_test

import (
	"log/slog"
	"slices"
	"testing"

	"connectrpc.com/connect"

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

// Triton's classification extension over gRPC: an output asked with the
// int64_param "classification" answers its top k classes per row as
// BYTES "value:index:label", for tensor probabilities and ZipMap outputs.
func TestTabularClassificationGRPC(t *testing.T) {
	orttest.Require(t)
	for _, name := range []string{"linear_str", "rf_int_zipmap", "svm_str_zipmap", "loan_columns", "xgb_binary"} {
		c := tabulartest.Find(t, name)
		m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		cl := client(t, c.Name, m)
		for _, spec := range m.Metadata().Outputs {
			if len(spec.Labels) == 0 {
				continue
			}
			raw := tabulartest.Raw(t, c.Path, c.Inputs, []serving.TensorSpec{spec})[spec.Name]
			for _, k := range []int64{1, 2, 5} {
				msg := grpcapi.EncodeRequest(c.Request(spec.Name))
				msg.Outputs[0].Parameters = map[string]*pb.InferParameter{
					"classification": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: k}},
				}
				resp, err := infer(cl, msg)
				if err != nil {
					t.Fatalf("%s %s k=%d: %v", name, spec.Name, k, err)
				}
				out, err := grpcapi.DecodeResponse(resp)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := out.Outputs[0].Strings()
				if want := tabulartest.TopK(spec, raw, int(k)); !slices.Equal(got, want) {
					t.Errorf("%s %s k=%d: got %q, want %q", name, spec.Name, k, got, want)
				}
			}
		}
	}
	// A classification that is not a positive int64 is InvalidArgument.
	c := tabulartest.Find(t, "linear_str")
	m, err := onnx.Load(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cl := client(t, c.Name, m)
	for _, p := range []*pb.InferParameter{
		{ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 0}},
		{ParameterChoice: &pb.InferParameter_StringParam{StringParam: "2"}},
	} {
		msg := grpcapi.EncodeRequest(c.Request("probabilities"))
		msg.Outputs[0].Parameters = map[string]*pb.InferParameter{"classification": p}
		_, err := infer(cl, msg)
		wantCode(t, err, connect.CodeInvalidArgument)
	}
}

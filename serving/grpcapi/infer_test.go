package grpcapi_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/servingtest"
)

// every builds a 2x2 tensor of each datatype with its edge values.
func every(t testing.TB) []serving.Tensor {
	t.Helper()
	s := []int64{2, 2}
	must := func(x serving.Tensor, err error) serving.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	return []serving.Tensor{
		must(serving.NewTensor("bool", s, []bool{true, false, true, true})),
		must(serving.NewTensor("u8", s, []uint8{0, 1, 254, 255})),
		must(serving.NewTensor("u16", s, []uint16{0, 1, 65534, 65535})),
		must(serving.NewTensor("u32", s, []uint32{0, 1, 1 << 31, math.MaxUint32})),
		must(serving.NewTensor("u64", s, []uint64{0, 1, 1 << 63, math.MaxUint64})),
		must(serving.NewTensor("i8", s, []int8{-128, -1, 0, 127})),
		must(serving.NewTensor("i16", s, []int16{-32768, -1, 0, 32767})),
		must(serving.NewTensor("i32", s, []int32{math.MinInt32, -1, 0, math.MaxInt32})),
		must(serving.NewTensor("i64", s, []int64{math.MinInt64, -1, 0, math.MaxInt64})),
		must(serving.NewFP16("f16", s, []uint16{0x3c00, 0xc000, 0x7c00, 0x7e00})),
		must(serving.NewBF16("bf16", s, []uint16{0x3f80, 0xc000, 0x7f80, 0x7fc0})),
		must(serving.NewTensor("f32", s, []float32{1.5, float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1))})),
		must(serving.NewTensor("f64", s, []float64{1.5, math.NaN(), math.Inf(1), math.SmallestNonzeroFloat64})),
		must(serving.NewStrings("bytes", s, []string{"", "a", "héllo", "\x00\xff"})),
	}
}

// typed builds the typed-contents message of t, widening narrow integers.
func typed(t serving.Tensor) *pb.ModelInferRequest_InferInputTensor {
	in := &pb.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape}
	out := grpcapi.EncodeResponse(&serving.Response{Outputs: []serving.Tensor{t}}, false)
	in.Contents = out.Outputs[0].Contents
	return in
}

// sameBits compares two tensors' raw encodings: NaNs and -0 included.
func sameBits(t *testing.T, got, want serving.Tensor) {
	t.Helper()
	if got.Name != want.Name || got.DataType != want.DataType || !slicesEqual(got.Shape, want.Shape) {
		t.Errorf("tensor %s %v%v, want %s %v%v", got.Name, got.DataType, got.Shape, want.Name, want.DataType, want.Shape)
	}
	if !bytes.Equal(got.RawBytes(), want.RawBytes()) {
		t.Errorf("tensor %s: bits %x, want %x", want.Name, got.RawBytes(), want.RawBytes())
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEveryDatatype sends each datatype raw and (where the protocol has a
// field) typed, and reads it back in each output form, bit for bit.
func TestEveryDatatype(t *testing.T) {
	modes := map[string]grpcapi.OutputContents{"raw": grpcapi.RawOutputs, "typed": grpcapi.TypedOutputs, "as-requested": grpcapi.OutputsAsRequested}
	for mname, mode := range modes {
		c := client(t, "echo", echo(), grpcapi.WithOutputContents(mode))
		for _, x := range every(t) {
			for _, raw := range []bool{true, false} {
				half := x.DataType == serving.FP16 || x.DataType == serving.BF16
				if half && !raw {
					continue
				}
				msg := grpcapi.EncodeRequest(&serving.Request{Model: "echo", Inputs: []serving.Tensor{x}})
				if !raw {
					msg.RawInputContents = nil
					msg.Inputs[0] = typed(x)
				}
				t.Run(mname+"/"+x.DataType.String()+map[bool]string{true: "/raw", false: "/typed"}[raw], func(t *testing.T) {
					resp, err := infer(c, msg)
					if err != nil {
						t.Fatal(err)
					}
					wantRaw := mode == grpcapi.RawOutputs || (mode == grpcapi.OutputsAsRequested && raw) || half
					if gotRaw := len(resp.RawOutputContents) > 0; gotRaw != wantRaw {
						t.Errorf("raw outputs %v, want %v", gotRaw, wantRaw)
					}
					if !wantRaw && resp.Outputs[0].Contents == nil {
						t.Error("typed answer has no contents")
					}
					back, err := grpcapi.DecodeResponse(resp)
					if err != nil {
						t.Fatal(err)
					}
					if len(back.Outputs) != 1 {
						t.Fatalf("%d outputs", len(back.Outputs))
					}
					sameBits(t, back.Outputs[0], x)
				})
			}
		}
	}
}

// TestBadInput: every malformed request is answered with a precise code and
// never reaches the model.
func TestBadInput(t *testing.T) {
	model := servingtest.Linear(2)
	c := client(t, "linear", model, grpcapi.WithMaxElements(1000))
	good := func() *pb.ModelInferRequest {
		return grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0))
	}
	typedX := func(dt string, shape []int64, c *pb.InferTensorContents) *pb.ModelInferRequest {
		return &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: dt, Shape: shape, Contents: c}}}
	}
	cases := []struct {
		name     string
		msg      func() *pb.ModelInferRequest
		code     connect.Code
		contains string
	}{
		{"unknown model", func() *pb.ModelInferRequest { m := good(); m.ModelName = "nope"; return m }, connect.CodeNotFound, "nope"},
		{"unknown version", func() *pb.ModelInferRequest { m := good(); m.ModelVersion = "9"; return m }, connect.CodeNotFound, "9"},
		{"unknown datatype", func() *pb.ModelInferRequest { m := good(); m.Inputs[0].Datatype = "FLOAT32"; return m }, connect.CodeInvalidArgument, "FLOAT32"},
		{"wrong datatype for model", func() *pb.ModelInferRequest {
			return typedX("FP64", []int64{1, 2}, &pb.InferTensorContents{Fp64Contents: []float64{1, 2}})
		}, connect.CodeInvalidArgument, "FP64"},
		{"wrong shape for model", func() *pb.ModelInferRequest {
			return typedX("FP32", []int64{1, 3}, &pb.InferTensorContents{Fp32Contents: []float32{1, 2, 3}})
		}, connect.CodeInvalidArgument, "shape"},
		{"wrong input name", func() *pb.ModelInferRequest { m := good(); m.Inputs[0].Name = "z"; return m }, connect.CodeInvalidArgument, `"z"`},
		{"count mismatch", func() *pb.ModelInferRequest {
			return typedX("FP32", []int64{1, 2}, &pb.InferTensorContents{Fp32Contents: []float32{1}})
		}, connect.CodeInvalidArgument, "fp32_contents has 1"},
		{"wrong field", func() *pb.ModelInferRequest {
			return typedX("FP32", []int64{1, 2}, &pb.InferTensorContents{IntContents: []int32{1, 2}})
		}, connect.CodeInvalidArgument, "takes fp32_contents, got int_contents"},
		{"no contents", func() *pb.ModelInferRequest { return typedX("FP32", []int64{1, 2}, nil) }, connect.CodeInvalidArgument, "has 0"},
		{"FP16 typed", func() *pb.ModelInferRequest {
			return typedX("FP16", []int64{1, 2}, &pb.InferTensorContents{Fp32Contents: []float32{1, 2}})
		}, connect.CodeInvalidArgument, "raw_input_contents"},
		{"INT8 out of range", func() *pb.ModelInferRequest {
			return typedX("INT8", []int64{2}, &pb.InferTensorContents{IntContents: []int32{1, 300}})
		}, connect.CodeInvalidArgument, "300"},
		{"UINT16 out of range", func() *pb.ModelInferRequest {
			return typedX("UINT16", []int64{1}, &pb.InferTensorContents{UintContents: []uint32{70000}})
		}, connect.CodeInvalidArgument, "70000"},
		{"raw length", func() *pb.ModelInferRequest { m := good(); m.RawInputContents[0] = m.RawInputContents[0][:7]; return m }, connect.CodeInvalidArgument, "raw bytes"},
		{"raw count", func() *pb.ModelInferRequest {
			m := good()
			m.RawInputContents = append(m.RawInputContents, []byte{1})
			return m
		}, connect.CodeInvalidArgument, "2 raw contents for 1 input"},
		{"raw and typed", func() *pb.ModelInferRequest {
			m := good()
			m.Inputs[0].Contents = &pb.InferTensorContents{Fp32Contents: []float32{1, 2}}
			return m
		}, connect.CodeInvalidArgument, "one or the other"},
		{"raw BYTES short", func() *pb.ModelInferRequest {
			m := good()
			m.Inputs[0].Datatype, m.Inputs[0].Shape, m.RawInputContents[0] = "BYTES", []int64{100}, []byte{0, 0, 0, 0}
			return m
		}, connect.CodeInvalidArgument, "cannot hold 100"},
		{"too many elements", func() *pb.ModelInferRequest {
			return typedX("FP32", []int64{1, 1001}, &pb.InferTensorContents{Fp32Contents: make([]float32, 1001)})
		}, connect.CodeInvalidArgument, "limit of 1000"},
		{"absurd shape", func() *pb.ModelInferRequest {
			return typedX("FP32", []int64{1 << 40, 1 << 40}, &pb.InferTensorContents{Fp32Contents: []float32{1}})
		}, connect.CodeInvalidArgument, "elements"},
		{"negative dim", func() *pb.ModelInferRequest {
			return typedX("FP32", []int64{-1, 2}, &pb.InferTensorContents{Fp32Contents: []float32{1, 2}})
		}, connect.CodeInvalidArgument, "negative"},
		{"unknown output", func() *pb.ModelInferRequest {
			m := good()
			m.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "nope"}}
			return m
		}, connect.CodeNotFound, "nope"},
		{"empty parameter", func() *pb.ModelInferRequest {
			m := good()
			m.Parameters = map[string]*pb.InferParameter{"p": {}}
			return m
		}, connect.CodeInvalidArgument, `"p"`},
		{"uint64 parameter out of range", func() *pb.ModelInferRequest {
			m := good()
			m.Parameters = map[string]*pb.InferParameter{"p": {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: math.MaxUint64}}}
			return m
		}, connect.CodeInvalidArgument, "out of range"},
		{"shared memory", func() *pb.ModelInferRequest {
			m := good()
			m.Inputs[0].Parameters = map[string]*pb.InferParameter{"shared_memory_region": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "r"}}}
			return m
		}, connect.CodeUnimplemented, "shared memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := infer(c, tc.msg())
			wantCode(t, err, tc.code)
			if ce := new(connect.Error); !errorsAs(err, &ce) || !strings.Contains(ce.Message(), tc.contains) {
				t.Errorf("message %q does not mention %q", err, tc.contains)
			}
		})
	}
	// Only requests the model itself rejects (it validates) reached it.
	if _, err := infer(c, good()); err != nil {
		t.Fatalf("good request: %v", err)
	}
}

func errorsAs(err error, target **connect.Error) bool {
	ce, ok := err.(*connect.Error)
	if ok {
		*target = ce
	}
	return ok
}

func TestErrorCodes(t *testing.T) {
	over := serving.Errorf(serving.ResourceExhausted, "queue full: %w", serving.ErrOverloaded)
	over.RetryAfter = 2500 * time.Millisecond
	cases := []struct {
		err   error
		code  connect.Code
		retry time.Duration
	}{
		{over, connect.CodeResourceExhausted, 2500 * time.Millisecond},
		{serving.ErrClosed, connect.CodeUnavailable, time.Second}, // the default hint
		{serving.Errorf(serving.InvalidArgument, "bad"), connect.CodeInvalidArgument, 0},
		{serving.Errorf(serving.NotFound, "gone"), connect.CodeNotFound, 0},
		{serving.Errorf(serving.Unimplemented, "no"), connect.CodeUnimplemented, 0},
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded, 0},
		{context.Canceled, connect.CodeCanceled, 0},
		{serving.Errorf(serving.Internal, "boom"), connect.CodeInternal, 0},
		{errorString("plain"), connect.CodeInternal, 0},
	}
	for _, tc := range cases {
		t.Run(tc.code.String(), func(t *testing.T) {
			c := client(t, "linear", servingtest.Failing(tc.err))
			_, err := infer(c, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)))
			wantCode(t, err, tc.code)
			ce := err.(*connect.Error)
			var got time.Duration
			for _, d := range ce.Details() {
				if v, err := d.Value(); err == nil {
					if ri, ok := v.(*errdetails.RetryInfo); ok {
						got = ri.GetRetryDelay().AsDuration()
					}
				}
			}
			if got != tc.retry {
				t.Errorf("RetryInfo %v, want %v", got, tc.retry)
			}
			wantHdr := ""
			if tc.retry > 0 {
				wantHdr = map[time.Duration]string{time.Second: "1", 2500 * time.Millisecond: "3"}[tc.retry]
			}
			if h := ce.Meta().Get(grpcapi.RetryAfterKey); h != wantHdr {
				t.Errorf("retry-after %q, want %q", h, wantHdr)
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

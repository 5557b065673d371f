package onnx_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// elemOf maps servekit datatypes to the builder's element types.
var elemOf = map[serving.DataType]onnxbuild.ElemType{
	serving.Bool: onnxbuild.Bool, serving.Uint8: onnxbuild.Uint8, serving.Uint16: onnxbuild.Uint16,
	serving.Uint32: onnxbuild.Uint32, serving.Uint64: onnxbuild.Uint64, serving.Int8: onnxbuild.Int8,
	serving.Int16: onnxbuild.Int16, serving.Int32: onnxbuild.Int32, serving.Int64: onnxbuild.Int64,
	serving.FP16: onnxbuild.Float16, serving.BF16: onnxbuild.BFloat16, serving.FP32: onnxbuild.Float,
	serving.FP64: onnxbuild.Double, serving.Bytes: onnxbuild.String,
}

// sample is a tensor of n elements of dt with edge values: extremes, NaN
// with a payload, infinities, -0, subnormals, non-ASCII and empty strings.
func sample(dt serving.DataType, shape []int64) serving.Tensor {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	var t serving.Tensor
	var err error
	switch dt {
	case serving.Bool:
		t, err = serving.NewTensor("x", shape, pick(n, []bool{true, false, false}))
	case serving.Uint8:
		t, err = serving.NewTensor("x", shape, pick(n, []uint8{0, 1, 255}))
	case serving.Uint16:
		t, err = serving.NewTensor("x", shape, pick(n, []uint16{0, 1, math.MaxUint16}))
	case serving.Uint32:
		t, err = serving.NewTensor("x", shape, pick(n, []uint32{0, 1, math.MaxUint32}))
	case serving.Uint64:
		t, err = serving.NewTensor("x", shape, pick(n, []uint64{0, 1, math.MaxUint64}))
	case serving.Int8:
		t, err = serving.NewTensor("x", shape, pick(n, []int8{math.MinInt8, -1, math.MaxInt8}))
	case serving.Int16:
		t, err = serving.NewTensor("x", shape, pick(n, []int16{math.MinInt16, -1, math.MaxInt16}))
	case serving.Int32:
		t, err = serving.NewTensor("x", shape, pick(n, []int32{math.MinInt32, -1, math.MaxInt32}))
	case serving.Int64:
		t, err = serving.NewTensor("x", shape, pick(n, []int64{math.MinInt64, -1, math.MaxInt64}))
	case serving.FP16:
		t, err = serving.NewFP16("x", shape, pick(n, []uint16{0x3c00, 0x7e01, 0x7c00, 0xfc00, 0x8000, 0x0001, 0x7bff}))
	case serving.BF16:
		t, err = serving.NewBF16("x", shape, pick(n, []uint16{0x3f80, 0x7fc1, 0x7f80, 0xff80, 0x8000, 0x0001, 0x7f7f}))
	case serving.FP32:
		t, err = serving.NewTensor("x", shape, pick(n, []float32{1.5, math.Float32frombits(0x7fc00123), float32(math.Inf(1)),
			float32(math.Inf(-1)), float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32}))
	case serving.FP64:
		t, err = serving.NewTensor("x", shape, pick(n, []float64{1.5, math.Float64frombits(0x7ff8000000000123), math.Inf(1),
			math.Inf(-1), math.Copysign(0, -1), math.SmallestNonzeroFloat64, math.MaxFloat64}))
	case serving.Bytes:
		t, err = serving.NewStrings("x", shape, pick(n, []string{"héllo, wörld", "", "a\tb\n", "日本語", "\xff\xfe"}))
	}
	if err != nil {
		panic(err)
	}
	return t
}

func pick[T any](n int, vals []T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = vals[i%len(vals)]
	}
	return out
}

// sameTensor compares bit for bit, so NaN payloads and -0 count.
func sameTensor(a, b serving.Tensor) error {
	if a.DataType != b.DataType || !reflect.DeepEqual(a.Shape, b.Shape) {
		return fmt.Errorf("got %v%v, want %v%v", a.DataType, a.Shape, b.DataType, b.Shape)
	}
	if a.DataType == serving.Bytes {
		if !reflect.DeepEqual(a.Data(), b.Data()) {
			return fmt.Errorf("got %q, want %q", a.Data(), b.Data())
		}
		return nil
	}
	if !bytes.Equal(a.RawBytes(), b.RawBytes()) {
		return fmt.Errorf("got %v, want %v", a.Data(), b.Data())
	}
	return nil
}

// TestDataTypeRoundTrip sends every datatype through Identity models whose
// output is copied through a pooled frame (fixed dims, or derived from the
// batch dim), preallocated in the response for a large batch, or
// allocated by ONNX Runtime, and expects the input back bit for bit.
func TestDataTypeRoundTrip(t *testing.T) {
	requireORT(t)
	layouts := []struct {
		name  string
		model []int64 // the model's dims
		req   []int64 // the request's shape
	}{
		{"fixed", []int64{2, 3}, []int64{2, 3}},
		{"batch", []int64{-1, 3}, []int64{4, 3}},
		{"dynamic", []int64{2, -1}, []int64{2, 5}},
		{"empty-batch", []int64{-1, 3}, []int64{0, 3}},
		// Over the frames' 4 KiB per tensor even for one-byte types: the
		// input is handed over in place, the output written in place.
		{"large-batch", []int64{-1, 64}, []int64{100, 64}},
	}
	for _, dt := range serving.DataTypes {
		for _, l := range layouts {
			t.Run(dt.String()+"/"+l.name, func(t *testing.T) {
				b, err := onnxbuild.Identity(elemOf[dt], l.model...)
				m := loadBytes(t, "identity", b, err)
				in := sample(dt, l.req)
				resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
				if l.name == "dynamic" && (dt == serving.FP16 || dt == serving.BF16) {
					// The binding mis-sizes FP16/BF16 outputs it allocates;
					// one whose shape only the run knows is refused.
					if serving.CodeOf(err) != serving.Unimplemented {
						t.Fatalf("Predict: %v, want an Unimplemented error", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Predict: %v", err)
				}
				y, ok := resp.Output("y")
				if !ok || len(resp.Outputs) != 1 {
					t.Fatalf("outputs %v", resp.Outputs)
				}
				in.Name = "y"
				if err := sameTensor(y, in); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestScalars: rank-0 numeric tensors work; FP16, BF16 and strings cannot
// be made rank 0 by the binding and are refused with a precise error.
func TestScalars(t *testing.T) {
	requireORT(t)
	for _, dt := range serving.DataTypes {
		t.Run(dt.String(), func(t *testing.T) {
			b, err := onnxbuild.Identity(elemOf[dt])
			m := loadBytes(t, "scalar", b, err)
			in := sample(dt, []int64{})
			resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
			if dt == serving.FP16 || dt == serving.BF16 || dt == serving.Bytes {
				if serving.CodeOf(err) != serving.Unimplemented {
					t.Fatalf("Predict: %v, want Unimplemented", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			y, _ := resp.Output("y")
			in.Name = "y"
			if err := sameTensor(y, in); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMultiIOAndOutputSubset(t *testing.T) {
	b, err := onnxbuild.MultiIO()
	m := loadBytes(t, "multi", b, err)
	a, _ := serving.NewTensor("a", []int64{2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	bb, _ := serving.NewTensor("b", []int64{2, 2}, []int64{7, -3, 0, 1 << 40})
	// Inputs in another order than the model's.
	req := &serving.Request{Inputs: []serving.Tensor{bb, a}}
	resp, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range resp.Outputs {
		names = append(names, o.Name)
	}
	if !reflect.DeepEqual(names, []string{"sum", "b2", "label"}) {
		t.Errorf("outputs %v, want all in model order", names)
	}
	label, _ := resp.Output("label")
	if s, _ := label.Strings(); !reflect.DeepEqual(s, []string{"7", "-3", "0", "1099511627776"}) {
		t.Errorf("label %q", s)
	}
	req.Outputs = []string{"label", "sum"}
	resp, err = m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Outputs) != 2 || resp.Outputs[0].Name != "label" || resp.Outputs[1].Name != "sum" {
		t.Fatalf("outputs %v, want label then sum", resp.Outputs)
	}
	sum, _ := serving.Values[float32](resp.Outputs[1])
	if !reflect.DeepEqual(sum, []float32{2, 4, 6, 8, 10, 12, 14, 16}) {
		t.Errorf("sum %v", sum)
	}
}

package onnx_test

import (
	"slices"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// TestInputsValidAgreesWithValidate: the fast check Predict runs first
// accepts the requests clients send, and never one Metadata.Validate
// refuses, so every error still comes from Metadata.Validate.
func TestInputsValidAgreesWithValidate(t *testing.T) {
	multi, err := onnxbuild.MultiIO() // a FP32 [-1, 4], b INT64 [-1, 2]
	m := loadBytes(t, "multi", multi, err)
	fixed, err := onnxbuild.Identity(onnxbuild.Float, 2, 3)
	mf := loadBytes(t, "fixed", fixed, err)

	tensor := func(name string, shape []int64, data any, dt serving.DataType) serving.Tensor {
		t.Helper()
		x, err := serving.FromSlice(name, dt, shape, data)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	a := func(rows int64) serving.Tensor {
		return tensor("a", []int64{rows, 4}, make([]float32, rows*4), serving.FP32)
	}
	b := func(rows int64) serving.Tensor {
		return tensor("b", []int64{rows, 2}, make([]int64, rows*2), serving.Int64)
	}
	with := func(x serving.Tensor, f func(*serving.Tensor)) serving.Tensor {
		x.Shape = slices.Clone(x.Shape)
		f(&x)
		return x
	}
	in := func(ts ...serving.Tensor) *serving.Request { return &serving.Request{Inputs: ts} }
	x := tensor("x", []int64{2, 3}, make([]float32, 6), serving.FP32)
	for _, c := range []struct {
		name string
		m    interface {
			InputsValid(*serving.Request) bool
			Metadata() serving.Metadata
		}
		req  *serving.Request
		fast bool // whether the fast check must accept it
	}{
		{"in order", m, in(a(3), b(3)), true},
		{"zero rows", m, in(a(0), b(0)), true},
		{"with outputs", m, &serving.Request{Inputs: []serving.Tensor{a(1), b(1)}, Outputs: []string{"sum"}}, true},
		{"fixed dims", mf, in(x), true},
		{"reversed", m, in(b(3), a(3)), false}, // valid, left to Validate
		{"rows differ", m, in(a(3), b(2)), false},
		{"one missing", m, in(a(3)), false},
		{"extra input", m, in(a(3), b(3), tensor("c", []int64{1}, []float32{1}, serving.FP32)), false},
		{"twice", m, in(a(3), a(3)), false},
		{"unknown name", m, in(a(3), with(b(3), func(t *serving.Tensor) { t.Name = "c" })), false},
		{"wrong datatype", m, in(a(3), with(b(3), func(t *serving.Tensor) { t.DataType = serving.Int32 })), false},
		{"datatype not the data's", m, in(with(tensor("a", []int64{3, 4}, make([]int32, 12), serving.Int32), func(t *serving.Tensor) { t.DataType = serving.FP32 }), b(3)), false},
		{"wrong rank", m, in(with(a(3), func(t *serving.Tensor) { t.Shape = []int64{12} }), b(3)), false},
		{"wrong fixed dim", m, in(with(a(3), func(t *serving.Tensor) { t.Shape = []int64{2, 6} }), b(3)), false},
		{"shape not the data's", m, in(with(a(3), func(t *serving.Tensor) { t.Shape[0] = 4 }), b(4)), false},
		{"negative dim", m, in(with(a(0), func(t *serving.Tensor) { t.Shape[0] = -1 }), b(0)), false},
		{"overflowing dims", m, in(with(a(1), func(t *serving.Tensor) { t.Shape[0] = 1 << 62 }), with(b(1), func(t *serving.Tensor) { t.Shape[0] = 1 << 62 })), false},
		{"fixed model, wrong dim", mf, in(with(x, func(t *serving.Tensor) { t.Shape = []int64{3, 2} })), false},
		{"zero tensor", m, in(serving.Tensor{Name: "a", DataType: serving.FP32, Shape: []int64{0, 4}}, b(0)), false},
	} {
		fast := c.m.InputsValid(c.req)
		err := c.m.Metadata().Validate(c.req)
		if fast && err != nil {
			t.Errorf("%s: the fast check accepts what Validate refuses: %v", c.name, err)
		}
		if c.fast && !fast {
			t.Errorf("%s: the fast check refuses a request clients send (Validate: %v)", c.name, err)
		}
	}
}

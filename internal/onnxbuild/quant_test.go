package onnxbuild_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/servekit/servekit/internal/onnxbuild"
)

func normal(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// maxRelError is max |got - want| over max |want|.
func maxRelError(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	var d, m float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i]-want[i])))
		m = max(m, math.Abs(float64(want[i])))
	}
	return d / m
}

func TestQParams(t *testing.T) {
	p := onnxbuild.QParams{Scale: 0.5, Zero: 10}
	for _, tc := range []struct {
		x float32
		q uint8
	}{{0, 10}, {1, 12}, {0.25, 10}, {0.75, 12}, {-5, 0}, {-6, 0}, {1000, 255}, {122.5, 255}, {122, 254}} {
		if got := p.Quantize(tc.x); got != tc.q {
			t.Errorf("Quantize(%v) = %d, want %d (round half to even, saturate)", tc.x, got, tc.q)
		}
	}
	if got := p.Dequantize(0); got != -5 {
		t.Errorf("Dequantize(0) = %v, want -5", got)
	}
}

// The model quantizes its input and hidden activations with the ranges it
// saw, widened to hold 0 exactly, and a ReLU output gets zero point 0.
func TestQuantizeMLPParams(t *testing.T) {
	spec, err := onnxbuild.RandomMLPSpec("m", []int{6, 8, 3}, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	calib := []float32{-2, -1, 0, 1, 2, 3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5}
	q, err := onnxbuild.QuantizeMLP(spec, calib, onnxbuild.PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	in := q.Inputs[0]
	if math.Abs(float64(in.Scale-5.0/255)) > 1e-7 || in.Zero != 102 || in.Dequantize(in.Quantize(0)) != 0 {
		t.Errorf("input params %+v, want scale 5/255 and zero 102 (0 exact)", in)
	}
	if h := q.Inputs[1]; h.Zero != 0 || h.Scale <= 0 {
		t.Errorf("hidden params %+v, want zero point 0 after ReLU", h)
	}
	// Per channel: every column's largest weight is ±127, and each weight
	// is within half a step of its FP32 value.
	l, w := spec.Layers[0], q.Weights[0]
	if len(w.Scale) != l.Out {
		t.Fatalf("%d scales, want one per output column (%d)", len(w.Scale), l.Out)
	}
	for o := range l.Out {
		var peak int8
		for k := range l.In {
			i := k*l.Out + o
			peak = max(peak, w.Q[i], -w.Q[i])
			if d := math.Abs(float64(float32(w.Q[i])*w.Scale[o] - l.W[i])); d > float64(w.Scale[o])/2+1e-7 {
				t.Errorf("weight %d off by %v, step %v", i, d, w.Scale[o])
			}
		}
		if peak != 127 {
			t.Errorf("column %d peaks at %d, want 127", o, peak)
		}
	}
	pt, err := onnxbuild.QuantizeMLP(spec, calib, onnxbuild.PerTensor)
	if err != nil || len(pt.Weights[0].Scale) != 1 {
		t.Errorf("per tensor: %v scales, %v", len(pt.Weights[0].Scale), err)
	}
}

// The quantized network answers within a few percent of FP32 on inputs it
// was not calibrated on, its Go evaluation is that of the model it writes
// (checked against ONNX Runtime in bench/quant), and the model has the
// structure QuantizeMLP documents.
func TestQuantizedMLP(t *testing.T) {
	spec, err := onnxbuild.RandomMLPSpec("m", []int{16, 32, 32, 5}, "softmax", 2)
	if err != nil {
		t.Fatal(err)
	}
	q, err := onnxbuild.QuantizeMLP(spec, normal(256*16, 1), onnxbuild.PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	x := normal(200*16, 2)
	want, _ := spec.Eval(x)
	got, err := q.Eval(x)
	if err != nil {
		t.Fatal(err)
	}
	if e := maxRelError(t, got, want); e > 0.05 || e == 0 {
		t.Errorf("INT8 vs FP32: max error %.3g of the largest output, want (0, 0.05]", e)
	}
	model, err := q.Model()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := q.Model()
	if !bytes.Equal(model, again) {
		t.Error("the same quantized spec gave two models")
	}
	s, err := onnxbuild.Summarize(model)
	if err != nil {
		t.Fatal(err)
	}
	const layers = 3
	weights := 16*32 + 32*32 + 32*5
	for what, n := range map[string][2]int{
		"QuantizeLinear":   {s.Ops["QuantizeLinear"], layers},
		"DequantizeLinear": {s.Ops["DequantizeLinear"], 3 * layers},
		"Gemm":             {s.Ops["Gemm"], layers},
		"MatMul":           {s.Ops["MatMul"], 0},
		"INT8 tensors":     {s.Initializers[onnxbuild.Int8], 2 * layers}, // weights and their zero points
		"INT8 bytes":       {s.Bytes[onnxbuild.Int8], weights + 32 + 32 + 5},
		"INT32 tensors":    {s.Initializers[onnxbuild.Int32], 2 * layers}, // biases and their zero points
		"UINT8 tensors":    {s.Initializers[onnxbuild.Uint8], layers},     // activation zero points
		"FLOAT bytes":      {s.Bytes[onnxbuild.Float], 4 * (layers + 2*(32+32+5))},
	} {
		if n[0] != n[1] {
			t.Errorf("%s: %d, want %d (all: %v %v)", what, n[0], n[1], s.Ops, s.Initializers)
		}
	}
	ins, outs := modelIO(t)(model, nil)
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("input", onnxbuild.Float, -1, 16)})
	checkIO(t, outs, []onnxbuild.ValueInfo{vi("output", onnxbuild.Float, -1, 5)})
}

func TestQuantizedConvNet(t *testing.T) {
	spec, err := onnxbuild.RandomConvNetSpec("c", 3, 8, 8, []int{4, 8}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	size := 3 * 8 * 8
	q, err := onnxbuild.QuantizeConvNet(spec, normal(16*size, 1), onnxbuild.PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	if h := q.Acts[1]; h.Zero != 0 {
		t.Errorf("block output params %+v, want zero point 0 after ReLU", h)
	}
	x := normal(32*size, 2)
	want, _ := spec.Eval(x)
	got, err := q.Eval(x)
	if err != nil {
		t.Fatal(err)
	}
	if e := maxRelError(t, got, want); e > 0.05 || e == 0 {
		t.Errorf("INT8 vs FP32: max error %.3g of the largest output, want (0, 0.05]", e)
	}
	if len(q.Convs[1].Scale) != 8 || len(q.Head.Scale) != 3 {
		t.Errorf("scales: %d for 8 filters, %d for 3 head columns", len(q.Convs[1].Scale), len(q.Head.Scale))
	}
	model, err := q.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := onnxbuild.Summarize(model)
	if err != nil {
		t.Fatal(err)
	}
	const blocks, pools = 2, 1
	for what, n := range map[string][2]int{
		"QuantizeLinear":   {s.Ops["QuantizeLinear"], blocks + pools + 3},
		"DequantizeLinear": {s.Ops["DequantizeLinear"], 3*blocks + pools + 5},
		"Conv":             {s.Ops["Conv"], blocks},
		"MaxPool":          {s.Ops["MaxPool"], pools},
		"INT8 bytes":       {s.Bytes[onnxbuild.Int8], 4*3*9 + 8*4*9 + 8*3 + 4 + 8 + 3},
		"INT32 tensors":    {s.Initializers[onnxbuild.Int32], 2 * (blocks + 1)},
	} {
		if n[0] != n[1] {
			t.Errorf("%s: %d, want %d (all: %v %v)", what, n[0], n[1], s.Ops, s.Initializers)
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	mlp, _ := onnxbuild.RandomMLPSpec("m", []int{4, 3}, "", 1)
	calib := normal(8, 1)
	tanh := mlp
	tanh.Activation = "tanh"
	half := mlp
	half.Precision = onnxbuild.FP16
	for name, tc := range map[string]struct {
		spec  onnxbuild.MLPSpec
		calib []float32
	}{
		"tanh":         {tanh, calib},
		"fp16":         {half, calib},
		"no calib":     {mlp, nil},
		"ragged calib": {mlp, calib[:7]},
		"no layers":    {onnxbuild.MLPSpec{}, calib},
	} {
		if _, err := onnxbuild.QuantizeMLP(tc.spec, tc.calib, onnxbuild.PerChannel); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := onnxbuild.QuantizeMLP(tanh, calib, onnxbuild.PerChannel); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
		t.Errorf("tanh: %v, want ErrInvalidGraph", err)
	}
	conv, _ := onnxbuild.RandomConvNetSpec("c", 1, 4, 4, []int{2}, 2, 1)
	if _, err := onnxbuild.QuantizeConvNet(conv, normal(15, 1), onnxbuild.PerChannel); err == nil {
		t.Error("conv net, ragged calibration: no error")
	}
	conv.Precision = onnxbuild.MixedFP16
	if _, err := onnxbuild.QuantizeConvNet(conv, normal(16, 1), onnxbuild.PerChannel); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
		t.Errorf("conv net in FP16: %v, want ErrInvalidGraph", err)
	}
	q, _ := onnxbuild.QuantizeMLP(mlp, calib, onnxbuild.PerChannel)
	if _, err := q.Eval(calib[:3]); err == nil {
		t.Error("Eval of a ragged batch: no error")
	}
}

// Summarize counts operators by domain and initializers by type.
func TestSummarize(t *testing.T) {
	model, err := onnxbuild.AddSub(onnxbuild.Int32, 4)
	if err != nil {
		t.Fatal(err)
	}
	s, err := onnxbuild.Summarize(model)
	if err != nil {
		t.Fatal(err)
	}
	if s.Ops["Add"] != 1 || s.Ops["Sub"] != 1 || len(s.Ops) != 2 || len(s.Initializers) != 0 {
		t.Errorf("AddSub: %v %v", s.Ops, s.Initializers)
	}
	spec, _ := onnxbuild.RandomMLPSpec("m", []int{4, 3}, "", 1)
	spec.Precision = onnxbuild.MixedFP16
	model, _ = onnxbuild.MLP(spec)
	if s, _ = onnxbuild.Summarize(model); s.Initializers[onnxbuild.Float16] != 2 || s.Bytes[onnxbuild.Float16] != 2*(12+3) ||
		s.Initializers[onnxbuild.Float] != 0 || s.Count("Cast") != 2 {
		t.Errorf("mixed FP16 MLP: %v %v %v", s.Ops, s.Initializers, s.Bytes)
	}
	if _, err := onnxbuild.Summarize([]byte{0xff}); err == nil {
		t.Error("garbage: no error")
	}
}

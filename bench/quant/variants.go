package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// network is one benchmarked network in every variant, FP32 first.
type network struct {
	name     string
	input    string
	row      []int64 // input dims after the batch dim
	variants []variant
	// calibration and accuracy are the fixed input sets: the first
	// quantizes the INT8 variants, the second measures every variant's
	// error against FP32. They never overlap (different seeds).
	calibration, accuracy []float32
	rowSize               int
}

// variant is one model of a network and how it is served.
type variant struct {
	name   string
	what   string
	model  []byte
	opt    onnx.GraphOptimization
	fp16IO bool  // input and output are FP16 tensors
	timed  bool  // measured for speed, not only accuracy
	bound  bound // the stated error against FP32
}

// bound is a variant's stated error against FP32 on the accuracy set:
// the largest absolute difference relative to the largest FP32 output,
// and the share of rows whose top class (argmax) is the same. The
// figures come from the measurements in bench/README.md with a margin;
// they are what a user of the variant can count on for these networks,
// not a law of quantization.
type bound struct {
	maxRel float64
	agree  float64
}

// sizes of the networks: "full" is what the README reports, "small" keeps
// the tests fast.
type sizes struct {
	mlp                []int
	image              [3]int
	channels           []int
	classes            int
	calibRows, accRows int // MLP rows
	calibImgs, accImgs int // conv images
}

var scales = map[string]sizes{
	// The wide MLP of the batching benchmarks (batch/bench_test.go,
	// batch/job) and the CIFAR-sized conv net of bench/gpu.
	"full": {mlp: []int{256, 1024, 1024, 10}, image: [3]int{3, 32, 32}, channels: []int{64, 128, 256}, classes: 10,
		calibRows: 256, accRows: 256, calibImgs: 8, accImgs: 128},
	"small": {mlp: []int{16, 32, 32, 4}, image: [3]int{3, 8, 8}, channels: []int{4, 8}, classes: 4,
		calibRows: 256, accRows: 64, calibImgs: 256, accImgs: 64},
}

// Seeds: the networks' weights are those of the benchmarks they come from.
const (
	seedMLP, seedConv   = 7, 22
	seedCalib, seedEval = 1001, 2001
)

// normal is n standard normal values from seed: the inputs of both sets.
func normal(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x9a17))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// build makes the named network ("mlp" or "conv") at scale in every
// variant.
func build(name, scale string) (*network, error) {
	sz, ok := scales[scale]
	if !ok {
		return nil, fmt.Errorf("unknown -scale %q (full, small)", scale)
	}
	var n network
	var fp32, fp16, mixed []byte
	var quantize func(onnxbuild.Granularity) ([]byte, error)
	var err error
	switch name {
	case "mlp":
		spec, err := onnxbuild.RandomMLPSpec("wide", sz.mlp, "softmax", seedMLP)
		if err != nil {
			return nil, err
		}
		n = network{name: name, input: "input", row: []int64{int64(sz.mlp[0])}, rowSize: sz.mlp[0]}
		n.calibration, n.accuracy = normal(sz.calibRows*n.rowSize, seedCalib), normal(sz.accRows*n.rowSize, seedEval)
		if fp32, fp16, mixed, err = floats(spec, onnxbuild.MLP); err != nil {
			return nil, err
		}
		quantize = func(g onnxbuild.Granularity) ([]byte, error) {
			q, err := onnxbuild.QuantizeMLP(spec, n.calibration, g)
			if err != nil {
				return nil, err
			}
			return q.Model()
		}
	case "fraud":
		// The demo model: 8 → 16 → 1, a few microseconds a call, most of
		// them the runtime's fixed cost; the case where size cannot pay.
		spec := onnxbuild.FraudSpec()
		n = network{name: name, input: "features", row: []int64{8}, rowSize: 8}
		n.calibration, n.accuracy = normal(sz.calibRows*n.rowSize, seedCalib+2), normal(sz.accRows*n.rowSize, seedEval+2)
		if fp32, fp16, mixed, err = floats(spec, onnxbuild.MLP); err != nil {
			return nil, err
		}
		quantize = func(g onnxbuild.Granularity) ([]byte, error) {
			q, err := onnxbuild.QuantizeMLP(spec, n.calibration, g)
			if err != nil {
				return nil, err
			}
			return q.Model()
		}
	case "conv":
		c, h, w := sz.image[0], sz.image[1], sz.image[2]
		spec, err := onnxbuild.RandomConvNetSpec("conv", c, h, w, sz.channels, sz.classes, seedConv)
		if err != nil {
			return nil, err
		}
		n = network{name: name, input: "image", row: []int64{int64(c), int64(h), int64(w)}, rowSize: c * h * w}
		n.calibration, n.accuracy = normal(sz.calibImgs*n.rowSize, seedCalib+1), normal(sz.accImgs*n.rowSize, seedEval+1)
		if fp32, fp16, mixed, err = floats(spec, onnxbuild.ConvNet); err != nil {
			return nil, err
		}
		quantize = func(g onnxbuild.Granularity) ([]byte, error) {
			q, err := onnxbuild.QuantizeConvNet(spec, n.calibration, g)
			if err != nil {
				return nil, err
			}
			return q.Model()
		}
	default:
		return nil, fmt.Errorf("unknown network %q (mlp, conv, fraud)", name)
	}
	channel, err := quantize(onnxbuild.PerChannel)
	if err != nil {
		return nil, err
	}
	tensor, err := quantize(onnxbuild.PerTensor)
	if err != nil {
		return nil, err
	}
	b := bounds[name]
	n.variants = []variant{
		{name: "fp32", what: "FP32 weights and compute (the reference)", model: fp32, opt: onnx.OptimizeAll, timed: true},
		{name: "fp16", what: "FP16 weights, compute, input and output", model: fp16, opt: onnx.OptimizeAll, fp16IO: true, timed: true, bound: b.fp16},
		{name: "fp16-in-fp32", what: "FP16 weights and compute behind FP32 input and output (Cast at the edges)", model: mixed, opt: onnx.OptimizeAll, timed: true, bound: b.fp16},
		{name: "int8", what: "QDQ: UINT8 activations, INT8 weights per output channel, INT32 biases", model: channel, opt: onnx.OptimizeAll, timed: true, bound: b.int8},
		{name: "int8-tensor", what: "as int8 with one weight scale per tensor", model: tensor, opt: onnx.OptimizeAll, bound: b.int8Tensor},
		{name: "int8-unfused", what: "the int8 model at ONNX Runtime's basic optimisation level: QDQ kept, run in FP32", model: channel, opt: onnx.OptimizeBasic, timed: true, bound: b.int8},
	}
	return &n, nil
}

// floats builds spec in FP32, FP16 and FP16 behind FP32 edges.
func floats[S interface {
	onnxbuild.MLPSpec | onnxbuild.ConvNetSpec
}](spec S, model func(S) ([]byte, error)) (fp32, fp16, mixed []byte, err error) {
	out := make([][]byte, 3)
	for i, p := range []onnxbuild.Precision{{}, onnxbuild.FP16, onnxbuild.MixedFP16} {
		s := spec
		switch s := any(&s).(type) {
		case *onnxbuild.MLPSpec:
			s.Precision = p
		case *onnxbuild.ConvNetSpec:
			s.Precision = p
		}
		if out[i], err = model(s); err != nil {
			return nil, nil, nil, err
		}
	}
	return out[0], out[1], out[2], nil
}

// bounds are the stated errors of each network's variants (see bound).
var bounds = map[string]struct{ fp16, int8, int8Tensor bound }{
	"fraud": {fp16: bound{maxRel: 0.01, agree: 0.99}, int8: bound{maxRel: 0.05, agree: 0.95}, int8Tensor: bound{maxRel: 0.05, agree: 0.95}},
	"mlp":   {fp16: bound{maxRel: 0.01, agree: 0.99}, int8: bound{maxRel: 0.05, agree: 0.95}, int8Tensor: bound{maxRel: 0.05, agree: 0.95}},
	"conv":  {fp16: bound{maxRel: 0.01, agree: 0.99}, int8: bound{maxRel: 0.05, agree: 0.95}, int8Tensor: bound{maxRel: 0.05, agree: 0.95}},
}

// request is rows rows of x (from row first on) as the variant takes them.
func (n *network) request(v variant, x []float32, first, rows int) *serving.Request {
	shape := slices.Concat([]int64{int64(rows)}, n.row)
	data := x[first*n.rowSize : (first+rows)*n.rowSize]
	var t serving.Tensor
	var err error
	if v.fp16IO {
		h := make([]uint16, len(data))
		for i, f := range data {
			h[i] = serving.Float32ToFP16(f)
		}
		t, err = serving.NewFP16(n.input, shape, h)
	} else {
		t, err = serving.NewTensor(n.input, shape, data)
	}
	if err != nil {
		panic(err) // shapes are ours
	}
	return &serving.Request{Inputs: []serving.Tensor{t}}
}

// floats32 is a response's only output as FP32 values.
func floats32(resp *serving.Response) ([]float32, error) {
	if len(resp.Outputs) != 1 {
		return nil, fmt.Errorf("%d outputs, want 1", len(resp.Outputs))
	}
	switch d := resp.Outputs[0].Data().(type) {
	case []float32:
		return d, nil
	case []uint16:
		if resp.Outputs[0].DataType != serving.FP16 {
			break
		}
		f := make([]float32, len(d))
		for i, h := range d {
			f[i] = serving.FP16ToFloat32(h)
		}
		return f, nil
	}
	return nil, fmt.Errorf("output of type %v, want FP32 or FP16", resp.Outputs[0].DataType)
}

package onnxbuild

import (
	"fmt"
	"slices"
	"strconv"
)

// QuantizedMLP is an [MLPSpec] in INT8 (see [QuantizeMLP]): what its model
// stores, kept so that [QuantizedMLP.Eval] can compute what the model
// means without a runtime.
type QuantizedMLP struct {
	Spec    MLPSpec
	Weights []QWeights // per layer, [In][Out]; channels are the Out columns
	Biases  [][]int32  // per layer, at scale Inputs[i].Scale × Weights[i] scale
	// Inputs are the UINT8 parameters of each layer's input: the model's
	// input, then each hidden layer's ReLU output.
	Inputs []QParams
}

// QuantizeMLP quantizes spec to INT8 with activation ranges measured on
// calibration, a row-major [n, In] batch run through the FP32 network.
// The spec must be FP32 with ReLU activations (the quantized ReLU is the
// clamp at zero point 0); the head is applied in FP32 to the last layer's
// FP32 result.
//
// The model, from [QuantizedMLP.Model], takes and returns FP32 like the
// spec's own; its layers are
//
//	QuantizeLinear(x) → DequantizeLinear → Gemm(·, DequantizeLinear(W INT8), DequantizeLinear(B INT32)) → Relu
//
// with the next layer's QuantizeLinear after each Relu. For L layers that
// is L QuantizeLinear and 3L DequantizeLinear nodes; the weights are L
// INT8 tensors and the biases L INT32 ones, each with a zero-point
// initializer of its type, and no FP32 tensor but the scales.
func QuantizeMLP(spec MLPSpec, calibration []float32, g Granularity) (*QuantizedMLP, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if spec.Precision.elem() != Float || spec.Precision.io() != Float {
		return nil, fmt.Errorf("%w: MLP %q: quantize an FP32 spec, not %v", ErrInvalidGraph, spec.Name, spec.Precision)
	}
	if activations[spec.Activation] != "Relu" {
		return nil, fmt.Errorf("%w: MLP %q: INT8 needs ReLU activations, not %q", ErrInvalidGraph, spec.Name, spec.Activation)
	}
	in := spec.Layers[0].In
	if len(calibration) == 0 || len(calibration)%in != 0 {
		return nil, fmt.Errorf("onnxbuild: MLP %q: calibration batch of %d values is not a non-empty multiple of %d", spec.Name, len(calibration), in)
	}
	ranges := make([]valueRange, len(spec.Layers))
	for i := range ranges {
		ranges[i] = newRange()
	}
	for row := range len(calibration) / in {
		x := calibration[row*in : (row+1)*in]
		ranges[0].see(x...)
		for i, l := range spec.Layers[:len(spec.Layers)-1] {
			x = dense(x, l, true)
			ranges[i+1].see(x...)
		}
	}
	q := &QuantizedMLP{Spec: spec}
	for i, l := range spec.Layers {
		x := activationParams(ranges[i].lo, ranges[i].hi)
		w := quantizeWeights(l.W, l.Out, func(j int) int { return j % l.Out }, g)
		b, err := quantizeBias(l.B, x, w)
		if err != nil {
			return nil, fmt.Errorf("MLP %q layer %d: %w", spec.Name, i, err)
		}
		q.Inputs = append(q.Inputs, x)
		q.Weights = append(q.Weights, w)
		q.Biases = append(q.Biases, b)
	}
	return q, nil
}

// dense is x·W + B for one row in FP32, with ReLU if relu. It walks W
// row by row, the order it is stored in.
func dense(x []float32, l Dense, relu bool) []float32 {
	y := make([]float32, l.Out)
	copy(y, l.B)
	for k, v := range x {
		for o, w := range l.W[k*l.Out : (k+1)*l.Out] {
			y[o] += v * w
		}
	}
	if relu {
		for o, v := range y {
			y[o] = max(v, 0)
		}
	}
	return y
}

// Model serialises the quantized network as a QDQ graph.
func (q *QuantizedMLP) Model() ([]byte, error) {
	name, input, output := q.Spec.names()
	layers := q.Spec.Layers
	g := NewGraph(name + "_int8")
	g.Input(input, Float, -1, int64(layers[0].In))
	qg := qdq{g}
	x := qg.quantize(input, q.Inputs[0])
	for i, l := range layers {
		n := "dense" + strconv.Itoa(i)
		w := qg.weights(n+".w", q.Weights[i], []int64{int64(l.In), int64(l.Out)}, 1)
		b := qg.bias(n+".b", q.Biases[i], biasScales(q.Inputs[i], q.Weights[i]))
		y := n + ".gemm"
		last := i == len(layers)-1
		if last && q.Spec.Head == "" {
			y = output
		}
		g.Node("Gemm", []string{qg.dequantize(x), w, b}, []string{y})
		if !last {
			g.Node("Relu", []string{y}, []string{n + ".act"})
			x = qg.quantize(n+".act", q.Inputs[i+1])
		} else if h := heads[q.Spec.Head]; h != "" {
			var attrs []Attr
			if h == "Softmax" {
				attrs = []Attr{AttrInt("axis", -1)}
			}
			g.Node(h, []string{y}, []string{output}, attrs...)
		}
	}
	g.Output(output, Float, -1, int64(layers[len(layers)-1].Out))
	return g.Model(DefaultOpset)
}

// Eval computes what the model means on a row-major [n, In] batch, in
// integers where the model is in integers: inputs quantized, products
// summed in INT32 with the bias, rescaled to FP32, ReLU and quantized
// again. A runtime that fuses the QDQ pairs into integer kernels (ONNX
// Runtime's QGemm) rescales with its own rounding, so expect its hidden
// activations to differ by a unit now and then, and its outputs by a
// little more than float rounding.
func (q *QuantizedMLP) Eval(batch []float32) ([]float32, error) {
	layers := q.Spec.Layers
	in := layers[0].In
	if len(batch)%in != 0 {
		return nil, fmt.Errorf("onnxbuild: MLP %q: batch of %d values is not a multiple of %d", q.Spec.Name, len(batch), in)
	}
	var out []float32
	for row := range len(batch) / in {
		x := make([]uint8, in)
		for k, v := range batch[row*in : (row+1)*in] {
			x[k] = q.Inputs[0].Quantize(v)
		}
		for i, l := range layers {
			zx, w := int32(q.Inputs[i].Zero), q.Weights[i]
			acc := slices.Clone(q.Biases[i])
			for k, v := range x {
				for o, wq := range w.Q[k*l.Out : (k+1)*l.Out] {
					acc[o] += (int32(v) - zx) * int32(wq)
				}
			}
			if i == len(layers)-1 {
				for o, a := range acc {
					out = append(out, float32(a)*(q.Inputs[i].Scale*w.scale(o)))
				}
				break
			}
			x = make([]uint8, l.Out)
			for o, a := range acc {
				x[o] = requantize(a, q.Inputs[i].Scale*w.scale(o), q.Inputs[i+1])
			}
		}
		y := out[len(out)-layers[len(layers)-1].Out:]
		switch q.Spec.Head {
		case "sigmoid":
			for i := range y {
				y[i] = activate("sigmoid", y[i])
			}
		case "softmax":
			softmax(y)
		}
	}
	return out, nil
}

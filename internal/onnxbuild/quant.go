package onnxbuild

import (
	"fmt"
	"math"
)

// INT8 quantization, done here in Go so that the quantized models are as
// reproducible as the FP32 ones: the same spec, calibration batch and
// granularity always give the same bytes.
//
// The scheme is the one ONNX Runtime's CPU kernels are built for ("U8S8",
// static):
//
//   - Activations are UINT8, asymmetric, one scale and zero point per
//     tensor, from the minimum and maximum seen on a calibration batch run
//     through the FP32 network in Go. The range is widened to contain 0, so
//     that 0 is exact: Conv pads with it, and after a ReLU the zero point
//     is 0, which makes the ReLU redundant and lets ONNX Runtime drop it.
//   - Weights are INT8, symmetric (zero point 0) in [-127, 127], with one
//     scale per output channel (Granularity PerChannel: a column of a
//     dense layer, a filter of a convolution) or one per tensor
//     (PerTensor): scale = max|w| / 127.
//   - Biases are INT32 with scale input_scale × weight_scale and zero point
//     0, so the integer product and the bias add up without rescaling.
//
// The graphs are QDQ: every quantized tensor is written as
// QuantizeLinear → DequantizeLinear around the FP32 operators (Gemm, Conv,
// MaxPool, GlobalAveragePool, Flatten), which is portable (any runtime can
// run it in FP32) and is what ONNX Runtime's graph optimiser fuses, from
// level "extended" up, into QGemm, QLinearConv, QLinearGlobalAveragePool
// and UINT8 MaxPool and Flatten. Only the model's input is quantized at run
// time (one QuantizeLinear); the output stays FP32 (the last Gemm's QGemm
// writes float), so callers send and receive the same tensors as for the
// FP32 model.
//
// On x86 CPUs without AVX512-VNNI or AVX-VNNI, ONNX Runtime multiplies
// UINT8 by INT8 with an instruction that saturates 16-bit sums, and
// 7-bit weights (its quantizer's reduce_range) avoid that; the machines
// this project measures on have VNNI, so the weights use the full 8 bits.

// Granularity is how many scales a weight tensor gets.
type Granularity int

const (
	// PerChannel gives each output channel its own scale: a small filter
	// next to a large one keeps its precision. The usual choice.
	PerChannel Granularity = iota
	// PerTensor gives the whole tensor one scale.
	PerTensor
)

// QParams are the scale and zero point of a UINT8 tensor, as
// QuantizeLinear applies them: q = saturate(round(x / Scale) + Zero),
// rounding half to even.
type QParams struct {
	Scale float32
	Zero  uint8
}

// activationParams covers the observed range [lo, hi], widened to hold 0.
func activationParams(lo, hi float32) QParams {
	lo, hi = min(lo, 0), max(hi, 0)
	if !(hi > lo) || math.IsInf(float64(hi-lo), 0) {
		return QParams{Scale: 1} // all zeros (or a broken range): any scale is exact
	}
	scale := (hi - lo) / 255
	zero := math.RoundToEven(float64(-lo / scale))
	return QParams{Scale: scale, Zero: uint8(min(max(zero, 0), 255))}
}

// Quantize is x as QuantizeLinear stores it.
func (p QParams) Quantize(x float32) uint8 {
	v := math.RoundToEven(float64(x/p.Scale)) + float64(p.Zero)
	return uint8(min(max(v, 0), 255))
}

// Dequantize is q as DequantizeLinear reads it.
func (p QParams) Dequantize(q uint8) float32 {
	return float32(int32(q)-int32(p.Zero)) * p.Scale
}

// QWeights is a weight tensor in INT8 with zero point 0: w ≈ Q × scale,
// with Scale holding one value per output channel (PerChannel) or one in
// all (PerTensor).
type QWeights struct {
	Q     []int8
	Scale []float32
}

// scale is the scale of output channel c.
func (w QWeights) scale(c int) float32 {
	if len(w.Scale) == 1 {
		return w.Scale[0]
	}
	return w.Scale[c]
}

// quantizeWeights quantizes w, whose element i belongs to output channel
// channel(i) of channels.
func quantizeWeights(w []float32, channels int, channel func(i int) int, g Granularity) QWeights {
	maxAbs := make([]float32, channels)
	for i, v := range w {
		c := channel(i)
		maxAbs[c] = max(maxAbs[c], float32(math.Abs(float64(v))))
	}
	if g == PerTensor {
		var m float32
		for _, v := range maxAbs {
			m = max(m, v)
		}
		maxAbs = []float32{m}
		channel = func(int) int { return 0 }
	}
	out := QWeights{Q: make([]int8, len(w)), Scale: make([]float32, len(maxAbs))}
	for c, m := range maxAbs {
		out.Scale[c] = m / 127
		if m == 0 {
			out.Scale[c] = 1 // an all-zero channel: any scale is exact
		}
	}
	for i, v := range w {
		q := math.RoundToEven(float64(v / out.Scale[channel(i)]))
		out.Q[i] = int8(min(max(q, -127), 127))
	}
	return out
}

// quantizeBias stores b in INT32 with scale x.Scale × w.scale(c) for
// channel c, the scale of the integer products it is added to.
func quantizeBias(b []float32, x QParams, w QWeights) ([]int32, error) {
	out := make([]int32, len(b))
	for c, v := range b {
		q := math.RoundToEven(float64(v / (x.Scale * w.scale(c))))
		if q > math.MaxInt32 || q < math.MinInt32 || math.IsNaN(q) {
			return nil, fmt.Errorf("%w: bias %d (%v) does not fit INT32 at scale %v", ErrInvalidGraph, c, v, x.Scale*w.scale(c))
		}
		out[c] = int32(q)
	}
	return out, nil
}

// biasScales are the DequantizeLinear scales of a bias quantized by
// quantizeBias: one per channel, or one when the weights have one.
func biasScales(x QParams, w QWeights) []float32 {
	s := make([]float32, len(w.Scale))
	for c := range s {
		s[c] = x.Scale * w.Scale[c]
	}
	return s
}

// valueRange tracks the minimum and maximum of the values it is shown.
type valueRange struct{ lo, hi float32 }

func newRange() valueRange { return valueRange{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))} }

func (r *valueRange) see(vs ...float32) {
	for _, v := range vs {
		r.lo, r.hi = min(r.lo, v), max(r.hi, v)
	}
}

// qdq writes the QDQ nodes of a quantized graph into g.
type qdq struct{ g *Graph }

// quantize appends QuantizeLinear(x) with p and returns the UINT8 value's
// name, x+".q". Its scale and zero point are initializers named after it,
// which dequantize reuses.
func (q qdq) quantize(x string, p QParams) string {
	name := x + ".q"
	q.g.Initializer(name+".scale", Float, nil, []float32{p.Scale})
	q.g.Initializer(name+".zero", Uint8, nil, []uint8{p.Zero})
	q.g.Node("QuantizeLinear", []string{x, name + ".scale", name + ".zero"}, []string{name})
	return name
}

// dequantize appends DequantizeLinear of xq, a value made by quantize, and
// returns the FP32 value's name.
func (q qdq) dequantize(xq string) string {
	q.g.Node("DequantizeLinear", []string{xq, xq + ".scale", xq + ".zero"}, []string{xq + ".dq"})
	return xq + ".dq"
}

// weights adds w as INT8 initializer name+".q" of the given dims and a
// DequantizeLinear (along axis when per channel) to the FP32 value name.
func (q qdq) weights(name string, w QWeights, dims []int64, axis int64) string {
	q.g.Initializer(name+".q", Int8, dims, w.Q)
	q.g.Initializer(name+".scale", Float, scaleDims(w.Scale), w.Scale)
	q.g.Initializer(name+".zero", Int8, scaleDims(w.Scale), make([]int8, len(w.Scale)))
	q.g.Node("DequantizeLinear", []string{name + ".q", name + ".scale", name + ".zero"}, []string{name}, axisAttr(w.Scale, axis)...)
	return name
}

// bias adds b as INT32 initializer name+".q" and its DequantizeLinear to
// the FP32 value name.
func (q qdq) bias(name string, b []int32, scales []float32) string {
	q.g.Initializer(name+".q", Int32, []int64{int64(len(b))}, b)
	q.g.Initializer(name+".scale", Float, scaleDims(scales), scales)
	q.g.Initializer(name+".zero", Int32, scaleDims(scales), make([]int32, len(scales)))
	q.g.Node("DequantizeLinear", []string{name + ".q", name + ".scale", name + ".zero"}, []string{name}, axisAttr(scales, 0)...)
	return name
}

// scaleDims is a scalar for one scale, else a vector.
func scaleDims(s []float32) []int64 {
	if len(s) == 1 {
		return nil
	}
	return []int64{int64(len(s))}
}

func axisAttr(s []float32, axis int64) []Attr {
	if len(s) == 1 {
		return nil
	}
	return []Attr{AttrInt("axis", axis)}
}

// requantize is DequantizeLinear of an integer accumulator at scale s,
// then ReLU and QuantizeLinear with p: what a fused kernel does in integers.
func requantize(acc int32, s float32, p QParams) uint8 {
	return p.Quantize(max(float32(acc)*s, 0))
}

package onnxbuild

import (
	"fmt"
	"strconv"
)

// QuantizedConvNet is a [ConvNetSpec] in INT8 (see [QuantizeConvNet]).
type QuantizedConvNet struct {
	Spec       ConvNetSpec
	Convs      []QWeights // per block, [Out][In][3][3]; channels are the filters
	ConvBiases [][]int32
	Head       QWeights // [In][classes]; channels are the columns
	HeadBias   []int32
	// Acts are the UINT8 parameters of the image, of each block's ReLU
	// output (its max pool keeps them, as max commutes with the
	// quantization), and of the global average pool's output.
	Acts []QParams
}

// QuantizeConvNet quantizes spec to INT8 with activation ranges measured
// on calibration, a row-major [n, C, H, W] batch run through the FP32
// network. The spec must be FP32.
//
// The model, from [QuantizedConvNet.Model], takes and returns FP32 like
// the spec's own. Every activation is a QuantizeLinear → DequantizeLinear
// pair: after the input, after each block's Relu, after each MaxPool
// (same parameters as its input), after GlobalAveragePool and after
// Flatten (same parameters as its input); weights and biases are INT8 and
// INT32 initializers (with zero points of their type) behind a
// DequantizeLinear. For B blocks of which P pool, that is B+P+3
// QuantizeLinear and 3B+P+5 DequantizeLinear nodes, B+1 INT8 weight
// tensors and B+1 INT32 bias tensors.
func QuantizeConvNet(spec ConvNetSpec, calibration []float32, g Granularity) (*QuantizedConvNet, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if spec.Precision.elem() != Float || spec.Precision.io() != Float {
		return nil, fmt.Errorf("%w: conv net %q: quantize an FP32 spec, not %v", ErrInvalidGraph, spec.Name, spec.Precision)
	}
	size := spec.Channels * spec.Height * spec.Width
	if len(calibration) == 0 || len(calibration)%size != 0 {
		return nil, fmt.Errorf("onnxbuild: conv net %q: calibration batch of %d values is not a non-empty multiple of %d", spec.Name, len(calibration), size)
	}
	ranges := make([]valueRange, len(spec.Blocks)+2)
	for i := range ranges {
		ranges[i] = newRange()
	}
	for img := range len(calibration) / size {
		x := calibration[img*size : (img+1)*size]
		ranges[0].see(x...)
		h, w := spec.Height, spec.Width
		for i, b := range spec.Blocks {
			x = convRelu(x, b, h, w)
			ranges[i+1].see(x...)
			if b.Pool {
				x, h, w = maxPool2(x, b.Out, h, w), h/2, w/2
			}
		}
		ranges[len(ranges)-1].see(channelMeans(x, h*w)...)
	}
	q := &QuantizedConvNet{Spec: spec}
	for _, r := range ranges {
		q.Acts = append(q.Acts, activationParams(r.lo, r.hi))
	}
	for i, b := range spec.Blocks {
		per := b.In * 9
		w := quantizeWeights(b.W, b.Out, func(j int) int { return j / per }, g)
		bias, err := quantizeBias(b.B, q.Acts[i], w)
		if err != nil {
			return nil, fmt.Errorf("conv net %q block %d: %w", spec.Name, i, err)
		}
		q.Convs, q.ConvBiases = append(q.Convs, w), append(q.ConvBiases, bias)
	}
	h := spec.Head
	q.Head = quantizeWeights(h.W, h.Out, func(j int) int { return j % h.Out }, g)
	var err error
	if q.HeadBias, err = quantizeBias(h.B, q.Acts[len(q.Acts)-1], q.Head); err != nil {
		return nil, fmt.Errorf("conv net %q head: %w", spec.Name, err)
	}
	return q, nil
}

// convRelu is Conv (3×3, pad 1, stride 1) + bias + ReLU over one CHW image
// in FP32, in the loop order that keeps the inner loop over a row.
func convRelu(x []float32, b ConvBlock, h, w int) []float32 {
	y := make([]float32, b.Out*h*w)
	for o := range b.Out {
		out := y[o*h*w : (o+1)*h*w]
		for i := range out {
			out[i] = b.B[o]
		}
		for c := range b.In {
			in := x[c*h*w : (c+1)*h*w]
			for di := -1; di <= 1; di++ {
				for dj := -1; dj <= 1; dj++ {
					wt := b.W[((o*b.In+c)*3+di+1)*3+dj+1]
					for i := max(0, -di); i < min(h, h-di); i++ {
						row, src := out[i*w:(i+1)*w], in[(i+di)*w:(i+di+1)*w]
						for j := max(0, -dj); j < min(w, w-dj); j++ {
							row[j] += wt * src[j+dj]
						}
					}
				}
			}
		}
		for i, v := range out {
			out[i] = max(v, 0)
		}
	}
	return y
}

// channelMeans is GlobalAveragePool over one CHW image of area cells per
// channel.
func channelMeans(x []float32, area int) []float32 {
	m := make([]float32, len(x)/area)
	for c := range m {
		var sum float64
		for _, v := range x[c*area : (c+1)*area] {
			sum += float64(v)
		}
		m[c] = float32(sum / float64(area))
	}
	return m
}

// Model serialises the quantized network as a QDQ graph.
func (q *QuantizedConvNet) Model() ([]byte, error) {
	s := q.Spec
	name, input, output := s.names()
	g := NewGraph(name + "_int8")
	g.Input(input, Float, -1, int64(s.Channels), int64(s.Height), int64(s.Width))
	qg := qdq{g}
	x := qg.quantize(input, q.Acts[0])
	for i, b := range s.Blocks {
		n := "conv" + strconv.Itoa(i)
		w := qg.weights(n+".w", q.Convs[i], []int64{int64(b.Out), int64(b.In), 3, 3}, 0)
		bias := qg.bias(n+".b", q.ConvBiases[i], biasScales(q.Acts[i], q.Convs[i]))
		g.Node("Conv", []string{qg.dequantize(x), w, bias}, []string{n + ".conv"},
			AttrInts("kernel_shape", 3, 3), AttrInts("pads", 1, 1, 1, 1), AttrInts("strides", 1, 1))
		g.Node("Relu", []string{n + ".conv"}, []string{n + ".relu"})
		x = qg.quantize(n+".relu", q.Acts[i+1])
		if b.Pool {
			g.Node("MaxPool", []string{qg.dequantize(x)}, []string{n + ".pool"}, AttrInts("kernel_shape", 2, 2), AttrInts("strides", 2, 2))
			x = qg.quantize(n+".pool", q.Acts[i+1])
		}
	}
	pooled := q.Acts[len(q.Acts)-1]
	g.Node("GlobalAveragePool", []string{qg.dequantize(x)}, []string{"gap"})
	x = qg.quantize("gap", pooled)
	g.Node("Flatten", []string{qg.dequantize(x)}, []string{"features"}, AttrInt("axis", 1))
	x = qg.quantize("features", pooled)
	w := qg.weights("head.w", q.Head, []int64{int64(s.Head.In), int64(s.Head.Out)}, 1)
	bias := qg.bias("head.b", q.HeadBias, biasScales(pooled, q.Head))
	g.Node("Gemm", []string{qg.dequantize(x), w, bias}, []string{output})
	g.Output(output, Float, -1, int64(s.Head.Out))
	return g.Model(DefaultOpset)
}

// Eval computes what the model means on a row-major [n, C, H, W] batch, in
// integers where the model is in integers (see [QuantizedMLP.Eval]). It is
// a plain loop nest, a few seconds for a hundred CIFAR-sized images.
func (q *QuantizedConvNet) Eval(batch []float32) ([]float32, error) {
	s := q.Spec
	size := s.Channels * s.Height * s.Width
	if len(batch)%size != 0 {
		return nil, fmt.Errorf("onnxbuild: conv net %q: batch of %d values is not a multiple of %d", s.Name, len(batch), size)
	}
	var out []float32
	for img := range len(batch) / size {
		x := make([]uint8, size)
		for i, v := range batch[img*size : (img+1)*size] {
			x[i] = q.Acts[0].Quantize(v)
		}
		h, w := s.Height, s.Width
		for i, b := range s.Blocks {
			x = q.convBlock(i, x, h, w)
			if b.Pool {
				x, h, w = maxPool2q(x, b.Out, h, w), h/2, w/2
			}
		}
		in, pooled := q.Acts[len(s.Blocks)], q.Acts[len(q.Acts)-1]
		features := make([]uint8, s.Head.In)
		for c := range features {
			var sum float64
			for _, v := range x[c*h*w : (c+1)*h*w] {
				sum += float64(in.Dequantize(v))
			}
			features[c] = pooled.Quantize(float32(sum / float64(h*w)))
		}
		for o := range s.Head.Out {
			acc := q.HeadBias[o]
			for k, v := range features {
				acc += (int32(v) - int32(pooled.Zero)) * int32(q.Head.Q[k*s.Head.Out+o])
			}
			out = append(out, float32(acc)*(pooled.Scale*q.Head.scale(o)))
		}
	}
	return out, nil
}

// convBlock is block i's Conv + ReLU in integers: INT32 sums of
// (x − zero) × w, padding contributing 0 as the zero point stands for 0.
func (q *QuantizedConvNet) convBlock(i int, x []uint8, h, w int) []uint8 {
	b, wq, in, next := q.Spec.Blocks[i], q.Convs[i], q.Acts[i], q.Acts[i+1]
	acc := make([]int32, h*w)
	y := make([]uint8, b.Out*h*w)
	zx := int32(in.Zero)
	for o := range b.Out {
		for j := range acc {
			acc[j] = q.ConvBiases[i][o]
		}
		for c := range b.In {
			src := x[c*h*w : (c+1)*h*w]
			for di := -1; di <= 1; di++ {
				for dj := -1; dj <= 1; dj++ {
					wt := int32(wq.Q[((o*b.In+c)*3+di+1)*3+dj+1])
					for r := max(0, -di); r < min(h, h-di); r++ {
						row, s := acc[r*w:(r+1)*w], src[(r+di)*w:(r+di+1)*w]
						for col := max(0, -dj); col < min(w, w-dj); col++ {
							row[col] += wt * (int32(s[col+dj]) - zx)
						}
					}
				}
			}
		}
		scale := in.Scale * wq.scale(o)
		for j, a := range acc {
			y[o*h*w+j] = requantize(a, scale, next)
		}
	}
	return y
}

// maxPool2q is MaxPool (2×2, stride 2) over one quantized CHW image: the
// max of the codes is the code of the max, scales being positive.
func maxPool2q(x []uint8, c, h, w int) []uint8 {
	oh, ow := h/2, w/2
	y := make([]uint8, c*oh*ow)
	for k := range c {
		for i := range oh {
			for j := range ow {
				at := func(di, dj int) uint8 { return x[(k*h+2*i+di)*w+2*j+dj] }
				y[(k*oh+i)*ow+j] = max(at(0, 0), at(0, 1), at(1, 0), at(1, 1))
			}
		}
	}
	return y
}

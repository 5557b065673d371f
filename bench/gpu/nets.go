package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// network is one benchmarked model in one precision, with the "thin"
// model that moves the same bytes between host and device but computes
// almost nothing: the floor under any run of the network at that batch.
type network struct {
	name, precision string
	model, thin     []byte
	input, output   string
	dtype           serving.DataType // of the input and output
	row             []int64          // input dims after the batch dim
	outRow          []int64          // output dims after the batch dim
	flopsPerRow     float64
}

// sizes of the networks: "full" for the GPU run, "small" for tests.
type sizes struct {
	mlp      []int
	image    [3]int
	channels []int
	classes  int
}

var scales = map[string]sizes{
	// A wide MLP of 25 M weights (100 MB in FP32): 50 MFLOP per row. A
	// CIFAR-sized conv net, 3×32×32 in, 64/128/256 channels: about 80
	// MFLOP per image, most of it in cuDNN convolutions.
	"full":  {mlp: []int{1024, 4096, 4096, 1024}, image: [3]int{3, 32, 32}, channels: []int{64, 128, 256}, classes: 10},
	"small": {mlp: []int{32, 64, 32}, image: [3]int{3, 8, 8}, channels: []int{4, 8}, classes: 10},
}

var precisions = map[string]onnxbuild.Precision{"fp32": {}, "fp16": onnxbuild.FP16}

// networks builds the named networks in the named precisions.
func networks(scale string, names, precs []string) ([]network, error) {
	sz, ok := scales[scale]
	if !ok {
		return nil, fmt.Errorf("unknown -scale %q (full, small)", scale)
	}
	var out []network
	for _, name := range names {
		for _, pn := range precs {
			p, ok := precisions[pn]
			if !ok {
				return nil, fmt.Errorf("unknown precision %q (fp32, fp16)", pn)
			}
			n, err := build(name, p, sz)
			if err != nil {
				return nil, err
			}
			n.precision = pn
			out = append(out, n)
		}
	}
	return out, nil
}

func build(name string, p onnxbuild.Precision, sz sizes) (network, error) {
	dt, elem := serving.FP32, onnxbuild.Float
	if p.Elem == onnxbuild.Float16 {
		dt, elem = serving.FP16, onnxbuild.Float16
	}
	switch name {
	case "mlp":
		spec, err := onnxbuild.RandomMLPSpec("mlp", sz.mlp, "", 21)
		if err != nil {
			return network{}, err
		}
		spec.Precision = p
		model, err := onnxbuild.MLP(spec)
		if err != nil {
			return network{}, err
		}
		in, out := int64(sz.mlp[0]), int64(sz.mlp[len(sz.mlp)-1])
		// Thin: the same [batch, in] → [batch, out] transfers; one Neg
		// (and a Slice or Pad when the widths differ) on the device.
		g := onnxbuild.NewGraph("mlp_thin")
		g.Input("input", elem, -1, in)
		g.Node("Neg", []string{"input"}, []string{"neg"})
		g.Initializer("starts", onnxbuild.Int64, []int64{1}, []int64{0})
		g.Initializer("ends", onnxbuild.Int64, []int64{1}, []int64{out})
		g.Initializer("axes", onnxbuild.Int64, []int64{1}, []int64{1})
		if out <= in {
			g.Node("Slice", []string{"neg", "starts", "ends", "axes"}, []string{"output"})
		} else {
			g.Initializer("pads", onnxbuild.Int64, []int64{4}, []int64{0, 0, 0, out - in})
			g.Node("Pad", []string{"neg", "pads"}, []string{"output"})
		}
		g.Output("output", elem, -1, out)
		thin, err := g.Model(onnxbuild.DefaultOpset)
		if err != nil {
			return network{}, err
		}
		var flops float64
		for i := 1; i < len(sz.mlp); i++ {
			flops += 2 * float64(sz.mlp[i-1]*sz.mlp[i])
		}
		return network{name: name, model: model, thin: thin, input: "input", output: "output", dtype: dt,
			row: []int64{in}, outRow: []int64{out}, flopsPerRow: flops}, nil
	case "conv":
		c, h, w := sz.image[0], sz.image[1], sz.image[2]
		spec, err := onnxbuild.RandomConvNetSpec("conv", c, h, w, sz.channels, sz.classes, 22)
		if err != nil {
			return network{}, err
		}
		spec.Precision = p
		model, err := onnxbuild.ConvNet(spec)
		if err != nil {
			return network{}, err
		}
		// Thin: the same image in and logits out: the channel means times
		// a [channels, classes] matrix.
		g := onnxbuild.NewGraph("conv_thin")
		g.Input("image", elem, -1, int64(c), int64(h), int64(w))
		g.Node("GlobalAveragePool", []string{"image"}, []string{"gap"})
		g.Node("Flatten", []string{"gap"}, []string{"means"}, onnxbuild.AttrInt("axis", 1))
		g.Initializer("mix", elem, []int64{int64(c), int64(sz.classes)}, p.Weights(make([]float32, c*sz.classes)))
		g.Node("MatMul", []string{"means", "mix"}, []string{"logits"})
		g.Output("logits", elem, -1, int64(sz.classes))
		thin, err := g.Model(onnxbuild.DefaultOpset)
		if err != nil {
			return network{}, err
		}
		var flops float64
		in := c
		for _, b := range spec.Blocks {
			flops += 2 * float64(h*w*b.Out*b.In*9)
			if b.Pool {
				h, w = h/2, w/2
			}
			in = b.Out
		}
		flops += 2 * float64(in*sz.classes)
		return network{name: name, model: model, thin: thin, input: "image", output: "logits", dtype: dt,
			row: []int64{int64(c), int64(sz.image[1]), int64(sz.image[2])}, outRow: []int64{int64(sz.classes)}, flopsPerRow: flops}, nil
	}
	return network{}, fmt.Errorf("unknown network %q (mlp, conv)", name)
}

// request is a request of rows random rows for n.
func (n network) request(rows int, rng *rand.Rand) *serving.Request {
	return &serving.Request{Inputs: []serving.Tensor{n.tensor(rows, rng)}}
}

func (n network) tensor(rows int, rng *rand.Rand) serving.Tensor {
	shape := slices.Concat([]int64{int64(rows)}, n.row)
	size, _ := serving.NumElements(shape)
	x := make([]float32, size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	var t serving.Tensor
	var err error
	if n.dtype == serving.FP16 {
		h := make([]uint16, len(x))
		for i, v := range x {
			h[i] = serving.Float32ToFP16(v)
		}
		t, err = serving.NewFP16(n.input, shape, h)
	} else {
		t, err = serving.NewTensor(n.input, shape, x)
	}
	if err != nil {
		panic(err) // shapes are ours
	}
	return t
}

// bytesPerRow is what one row moves host to device and back.
func (n network) bytesPerRow() (in, out int) {
	size := n.dtype.Size()
	a, _ := serving.NumElements(n.row)
	b, _ := serving.NumElements(n.outRow)
	return int(a) * size, int(b) * size
}

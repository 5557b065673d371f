package onnxbuild

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// ConvBlock is one 3×3 convolution (stride 1, padding 1, so the spatial
// size is kept) with a bias, followed by ReLU and, when Pool is set, a
// 2×2 max pool of stride 2.
type ConvBlock struct {
	In, Out int
	W       []float32 // [Out][In][3][3], ONNX's Conv weight layout
	B       []float32 // [Out]
	Pool    bool
}

// ConvNetSpec describes a small image classifier over an NCHW input
// [batch, Channels, Height, Width]: the blocks, then a global average pool
// over the spatial dims, then a dense layer to [batch, Head.Out] logits.
// It is the shape of the networks that make GPUs worth their cost: a few
// MFLOP per image, most of it in the convolutions.
type ConvNetSpec struct {
	Name          string // graph name; "convnet" when empty
	Input, Output string // value names; "image" and "logits" when empty
	Channels      int
	Height, Width int
	Blocks        []ConvBlock
	Head          Dense
	Precision     Precision
}

func (s ConvNetSpec) names() (name, input, output string) {
	return orDefault(s.Name, "convnet"), orDefault(s.Input, "image"), orDefault(s.Output, "logits")
}

func (s ConvNetSpec) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: conv net %q: "+format, append([]any{ErrInvalidGraph, s.Name}, args...)...)
	}
	if s.Channels <= 0 || s.Height <= 0 || s.Width <= 0 {
		return bad("input %d×%d×%d", s.Channels, s.Height, s.Width)
	}
	if len(s.Blocks) == 0 {
		return bad("no blocks")
	}
	in, h, w := s.Channels, s.Height, s.Width
	for i, b := range s.Blocks {
		switch {
		case b.In != in || b.Out <= 0:
			return bad("block %d: %d→%d channels, previous block gives %d", i, b.In, b.Out, in)
		case len(b.W) != b.Out*b.In*9:
			return bad("block %d: %d weights, want %d×%d×3×3", i, len(b.W), b.Out, b.In)
		case len(b.B) != b.Out:
			return bad("block %d: %d biases, want %d", i, len(b.B), b.Out)
		case b.Pool && (h < 2 || w < 2):
			return bad("block %d: cannot pool %d×%d", i, h, w)
		}
		in = b.Out
		if b.Pool {
			h, w = h/2, w/2
		}
	}
	switch {
	case s.Head.In != in || s.Head.Out <= 0:
		return bad("head %d→%d, blocks give %d channels", s.Head.In, s.Head.Out, in)
	case len(s.Head.W) != s.Head.In*s.Head.Out || len(s.Head.B) != s.Head.Out:
		return bad("head has %d weights and %d biases for %d→%d", len(s.Head.W), len(s.Head.B), s.Head.In, s.Head.Out)
	}
	return s.Precision.check("conv net " + strconv.Quote(s.Name))
}

// ConvNet builds the model of spec from Conv, Relu, MaxPool,
// GlobalAveragePool, Flatten, MatMul and Add nodes (and Cast for a mixed
// precision), with a dynamic batch dimension.
func ConvNet(spec ConvNetSpec) ([]byte, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	name, input, output := spec.names()
	p := spec.Precision
	g := NewGraph(name)
	x := p.input(g, input, -1, int64(spec.Channels), int64(spec.Height), int64(spec.Width))
	result, declare := p.output(g, output, -1, int64(spec.Head.Out))
	for i, b := range spec.Blocks {
		n := "conv" + strconv.Itoa(i)
		g.Initializer(n+".w", p.elem(), []int64{int64(b.Out), int64(b.In), 3, 3}, p.Weights(b.W))
		g.Initializer(n+".b", p.elem(), []int64{int64(b.Out)}, p.Weights(b.B))
		g.Node("Conv", []string{x, n + ".w", n + ".b"}, []string{n + ".conv"},
			AttrInts("kernel_shape", 3, 3), AttrInts("pads", 1, 1, 1, 1), AttrInts("strides", 1, 1))
		g.Node("Relu", []string{n + ".conv"}, []string{n + ".relu"})
		x = n + ".relu"
		if b.Pool {
			g.Node("MaxPool", []string{x}, []string{n + ".pool"}, AttrInts("kernel_shape", 2, 2), AttrInts("strides", 2, 2))
			x = n + ".pool"
		}
	}
	g.Node("GlobalAveragePool", []string{x}, []string{"gap"})
	g.Node("Flatten", []string{"gap"}, []string{"features"}, AttrInt("axis", 1))
	g.Initializer("head.w", p.elem(), []int64{int64(spec.Head.In), int64(spec.Head.Out)}, p.Weights(spec.Head.W))
	g.Initializer("head.b", p.elem(), []int64{int64(spec.Head.Out)}, p.Weights(spec.Head.B))
	g.Node("MatMul", []string{"features", "head.w"}, []string{"head.matmul"})
	g.Node("Add", []string{"head.matmul", "head.b"}, []string{result})
	declare()
	return g.Model(DefaultOpset)
}

// RandomConvNetSpec makes a conv net over [channels, height, width]
// images with one block per entry of widths (output channels), pooling
// after every block but the last, and a head to classes logits. Weights
// are He-uniform (√(6/fan_in)), which keeps ReLU activations in range at
// any depth; biases get a tenth of the bound. The same seed always gives
// the same weights.
func RandomConvNetSpec(name string, channels, height, width int, widths []int, classes int, seed int64) (ConvNetSpec, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc0_11e7))
	uniform := func(limit float64) float32 { return float32((2*rng.Float64() - 1) * limit) }
	fill := func(n int, limit float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = uniform(limit)
		}
		return v
	}
	spec := ConvNetSpec{Name: name, Channels: channels, Height: height, Width: width}
	in := channels
	for i, out := range widths {
		if in <= 0 || out <= 0 {
			return ConvNetSpec{}, fmt.Errorf("%w: conv net %q: widths %v over %d channels", ErrInvalidGraph, name, widths, channels)
		}
		limit := math.Sqrt(6 / float64(in*9))
		spec.Blocks = append(spec.Blocks, ConvBlock{In: in, Out: out, W: fill(out*in*9, limit), B: fill(out, limit/10), Pool: i < len(widths)-1})
		in = out
	}
	limit := math.Sqrt(6 / float64(in+classes))
	spec.Head = Dense{In: in, Out: classes, W: fill(in*classes, limit), B: fill(classes, limit/10)}
	return spec, spec.check()
}

// Eval runs spec in plain Go on a row-major [n, C, H, W] batch and returns
// the [n, classes] logits, rounding as MLPSpec.Eval does for FP16. It is a
// naive loop nest, meant for test-sized specs.
func (s ConvNetSpec) Eval(batch []float32) ([]float32, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	p := s.Precision
	size := s.Channels * s.Height * s.Width
	if len(batch)%size != 0 {
		return nil, fmt.Errorf("onnxbuild: conv net %q: batch of %d values is not a multiple of %d", s.Name, len(batch), size)
	}
	var out []float32
	for img := range len(batch) / size {
		x := make([]float32, size)
		for i, v := range batch[img*size : (img+1)*size] {
			x[i] = p.round(p.roundIO(v))
		}
		c, h, w := s.Channels, s.Height, s.Width
		for _, b := range s.Blocks {
			x = conv3x3(x, b, h, w, p)
			c = b.Out
			if b.Pool {
				x, h, w = maxPool2(x, c, h, w), h/2, w/2
			}
		}
		for o := range s.Head.Out {
			sum := float64(p.round(s.Head.B[o]))
			for k := range c {
				var mean float64
				for _, v := range x[k*h*w : (k+1)*h*w] {
					mean += float64(v)
				}
				sum += float64(p.round(float32(mean/float64(h*w)))) * float64(p.round(s.Head.W[k*s.Head.Out+o]))
			}
			out = append(out, p.roundIO(p.round(float32(sum))))
		}
	}
	return out, nil
}

// conv3x3 is Conv (3×3, pad 1, stride 1) + bias + ReLU over one CHW image.
func conv3x3(x []float32, b ConvBlock, h, w int, p Precision) []float32 {
	y := make([]float32, b.Out*h*w)
	for o := range b.Out {
		for i := range h {
			for j := range w {
				sum := float64(p.round(b.B[o]))
				for c := range b.In {
					for di := -1; di <= 1; di++ {
						for dj := -1; dj <= 1; dj++ {
							ii, jj := i+di, j+dj
							if ii < 0 || ii >= h || jj < 0 || jj >= w {
								continue
							}
							wt := b.W[((o*b.In+c)*3+di+1)*3+dj+1]
							sum += float64(x[(c*h+ii)*w+jj]) * float64(p.round(wt))
						}
					}
				}
				y[(o*h+i)*w+j] = p.round(max(float32(sum), 0))
			}
		}
	}
	return y
}

// maxPool2 is MaxPool (2×2, stride 2) over one CHW image; an odd last row
// or column is dropped, as ONNX's floor rounding does.
func maxPool2(x []float32, c, h, w int) []float32 {
	oh, ow := h/2, w/2
	y := make([]float32, c*oh*ow)
	for k := range c {
		for i := range oh {
			for j := range ow {
				at := func(di, dj int) float32 { return x[(k*h+2*i+di)*w+2*j+dj] }
				y[(k*oh+i)*ow+j] = max(at(0, 0), at(0, 1), at(1, 0), at(1, 1))
			}
		}
	}
	return y
}

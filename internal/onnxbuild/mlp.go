package onnxbuild

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Dense is one fully connected layer: y = x·W + B.
type Dense struct {
	In, Out int
	// W is row-major [In][Out], the layout MatMul wants, so weights are
	// written without a transpose.
	W []float32
	B []float32
}

// MLPSpec describes a multilayer perceptron over a [batch, In] FP32 input.
type MLPSpec struct {
	Name          string // graph name; "mlp" when empty
	Input, Output string // value names; "input" and "output" when empty
	Layers        []Dense
	// Activation follows every layer but the last: "relu" (also the
	// default), "tanh" or "sigmoid".
	Activation string
	// Head follows the last layer: "sigmoid", "softmax" (over the last
	// axis) or "" for raw logits.
	Head string
	// Precision is FP32 unless set (FP16, MixedFP16).
	Precision Precision
}

var activations = map[string]string{"": "Relu", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}

var heads = map[string]string{"": "", "sigmoid": "Sigmoid", "softmax": "Softmax"}

func (s MLPSpec) names() (name, input, output string) {
	return orDefault(s.Name, "mlp"), orDefault(s.Input, "input"), orDefault(s.Output, "output")
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s MLPSpec) check() error {
	if len(s.Layers) == 0 {
		return fmt.Errorf("%w: MLP %q has no layers", ErrInvalidGraph, s.Name)
	}
	if _, ok := activations[s.Activation]; !ok {
		return fmt.Errorf("%w: MLP %q: unknown activation %q", ErrInvalidGraph, s.Name, s.Activation)
	}
	if _, ok := heads[s.Head]; !ok {
		return fmt.Errorf("%w: MLP %q: unknown head %q", ErrInvalidGraph, s.Name, s.Head)
	}
	if err := s.Precision.check("MLP " + strconv.Quote(s.Name)); err != nil {
		return err
	}
	for i, l := range s.Layers {
		switch {
		case l.In <= 0 || l.Out <= 0:
			return fmt.Errorf("%w: MLP %q layer %d: size %d→%d", ErrInvalidGraph, s.Name, i, l.In, l.Out)
		case i > 0 && l.In != s.Layers[i-1].Out:
			return fmt.Errorf("%w: MLP %q layer %d: input %d, previous layer outputs %d",
				ErrInvalidGraph, s.Name, i, l.In, s.Layers[i-1].Out)
		case len(l.W) != l.In*l.Out:
			return fmt.Errorf("%w: MLP %q layer %d: %d weights, want %d×%d", ErrInvalidGraph, s.Name, i, len(l.W), l.In, l.Out)
		case len(l.B) != l.Out:
			return fmt.Errorf("%w: MLP %q layer %d: %d biases, want %d", ErrInvalidGraph, s.Name, i, len(l.B), l.Out)
		}
	}
	return nil
}

// MLP builds the model of spec from MatMul, Add and activation nodes with
// a dynamic batch dimension: [-1, In] → [-1, Out].
func MLP(spec MLPSpec) ([]byte, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	return mlpGraph(spec).Model(DefaultOpset)
}

// mlpGraph lays out a checked spec as a graph.
func mlpGraph(spec MLPSpec) *Graph {
	name, input, output := spec.names()
	first, last := spec.Layers[0], spec.Layers[len(spec.Layers)-1]
	p := spec.Precision
	g := NewGraph(name)
	x := p.input(g, input, -1, int64(first.In))
	result, declare := p.output(g, output, -1, int64(last.Out))
	for i, l := range spec.Layers {
		n := "dense" + strconv.Itoa(i)
		g.Initializer(n+".w", p.elem(), []int64{int64(l.In), int64(l.Out)}, p.Weights(l.W))
		g.Initializer(n+".b", p.elem(), []int64{int64(l.Out)}, p.Weights(l.B))
		g.Node("MatMul", []string{x, n + ".w"}, []string{n + ".matmul"})
		x = n + ".add"
		if i == len(spec.Layers)-1 && spec.Head == "" {
			x = result
		}
		g.Node("Add", []string{n + ".matmul", n + ".b"}, []string{x})
		if i < len(spec.Layers)-1 {
			g.Node(activations[spec.Activation], []string{x}, []string{n + ".act"})
			x = n + ".act"
		}
	}
	switch spec.Head {
	case "softmax":
		g.Node("Softmax", []string{x}, []string{result}, AttrInt("axis", -1))
	case "sigmoid":
		g.Node("Sigmoid", []string{x}, []string{result})
	}
	declare()
	return g
}

// Eval runs spec in plain Go on a row-major [n, In] batch and returns the
// [n, Out] result, so tests can check a runtime's answers without a second
// runtime. It accumulates in float64; expect ONNX Runtime to differ in the
// last float32 bits. For FP16 it rounds weights, the input and every
// layer's result to FP16, as a runtime storing FP16 tensors does; expect
// differences of a few FP16 steps (about 1e-3 relative) there.
func (s MLPSpec) Eval(batch []float32) ([]float32, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	p := s.Precision
	in := s.Layers[0].In
	if len(batch)%in != 0 {
		return nil, fmt.Errorf("onnxbuild: MLP %q: batch of %d values is not a multiple of %d", s.Name, len(batch), in)
	}
	var out []float32
	for row := range len(batch) / in {
		x := make([]float32, in)
		for k, v := range batch[row*in : (row+1)*in] {
			x[k] = p.round(p.roundIO(v))
		}
		for i, l := range s.Layers {
			y := make([]float32, l.Out)
			for o := range l.Out {
				sum := float64(p.round(l.B[o]))
				for k := range l.In {
					sum += float64(x[k]) * float64(p.round(l.W[k*l.Out+o]))
				}
				y[o] = p.round(float32(sum))
				if i < len(s.Layers)-1 {
					y[o] = p.round(activate(s.Activation, y[o]))
				}
			}
			x = y
		}
		switch s.Head {
		case "sigmoid":
			for i := range x {
				x[i] = activate("sigmoid", x[i])
			}
		case "softmax":
			softmax(x)
		}
		for i := range x {
			x[i] = p.roundIO(p.round(x[i]))
		}
		out = append(out, x...)
	}
	return out, nil
}

func activate(name string, v float32) float32 {
	switch name {
	case "tanh":
		return float32(math.Tanh(float64(v)))
	case "sigmoid":
		return float32(1 / (1 + math.Exp(-float64(v))))
	}
	return max(v, 0)
}

func softmax(x []float32) {
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		sum += e
	}
	for i := range x {
		x[i] = float32(float64(x[i]) / sum)
	}
}

// RandomMLPSpec makes an MLP with layer sizes sizes[0]→sizes[1]→… and ReLU
// between layers. Weights are drawn uniformly within the Xavier/Glorot
// bound √(6/(in+out)), which keeps activations in a sane range at any
// depth; biases get a tenth of that bound so a bias bug still shows. The
// same seed always gives the same weights (PCG is specified bit for bit).
func RandomMLPSpec(name string, sizes []int, head string, seed int64) (MLPSpec, error) {
	if len(sizes) < 2 {
		return MLPSpec{}, fmt.Errorf("%w: MLP %q needs at least two sizes, got %v", ErrInvalidGraph, name, sizes)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5e7e_c417))
	uniform := func(limit float64) float32 { return float32((2*rng.Float64() - 1) * limit) }
	spec := MLPSpec{Name: name, Head: head}
	for i := 1; i < len(sizes); i++ {
		in, out := sizes[i-1], sizes[i]
		if in <= 0 || out <= 0 {
			return MLPSpec{}, fmt.Errorf("%w: MLP %q: sizes %v", ErrInvalidGraph, name, sizes)
		}
		limit := math.Sqrt(6 / float64(in+out))
		l := Dense{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out)}
		for j := range l.W {
			l.W[j] = uniform(limit)
		}
		for j := range l.B {
			l.B[j] = uniform(limit / 10)
		}
		spec.Layers = append(spec.Layers, l)
	}
	return spec, nil
}

// RandomMLP is MLP(RandomMLPSpec(…)): e.g. sizes {256, 1024, 1024, 10}
// with head "softmax" is a 5 MB classifier for benchmarks. For another
// precision set the spec's Precision and call MLP.
func RandomMLP(name string, sizes []int, head string, seed int64) ([]byte, error) {
	spec, err := RandomMLPSpec(name, sizes, head, seed)
	if err != nil {
		return nil, err
	}
	return MLP(spec)
}

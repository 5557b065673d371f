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
}

var activations = map[string]string{"": "Relu", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}

var heads = map[string]string{"": "", "sigmoid": "Sigmoid", "softmax": "Softmax"}

func (s MLPSpec) names() (name, input, output string) {
	name, input, output = s.Name, s.Input, s.Output
	if name == "" {
		name = "mlp"
	}
	if input == "" {
		input = "input"
	}
	if output == "" {
		output = "output"
	}
	return name, input, output
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
	g := NewGraph(name)
	g.Input(input, Float, -1, int64(first.In))
	x := input
	for i, l := range spec.Layers {
		p := "dense" + strconv.Itoa(i)
		g.Initializer(p+".w", Float, []int64{int64(l.In), int64(l.Out)}, l.W)
		g.Initializer(p+".b", Float, []int64{int64(l.Out)}, l.B)
		g.Node("MatMul", []string{x, p + ".w"}, []string{p + ".matmul"})
		x = p + ".add"
		if i == len(spec.Layers)-1 && spec.Head == "" {
			x = output
		}
		g.Node("Add", []string{p + ".matmul", p + ".b"}, []string{x})
		if i < len(spec.Layers)-1 {
			g.Node(activations[spec.Activation], []string{x}, []string{p + ".act"})
			x = p + ".act"
		}
	}
	switch spec.Head {
	case "softmax":
		g.Node("Softmax", []string{x}, []string{output}, AttrInt("axis", -1))
	case "sigmoid":
		g.Node("Sigmoid", []string{x}, []string{output})
	}
	g.Output(output, Float, -1, int64(last.Out))
	return g
}

// Eval runs spec in plain Go on a row-major [n, In] batch and returns the
// [n, Out] result, so tests can check a runtime's answers without a second
// runtime. It accumulates in float64; expect ONNX Runtime to differ in the
// last float32 bits.
func (s MLPSpec) Eval(batch []float32) ([]float32, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	in := s.Layers[0].In
	if len(batch)%in != 0 {
		return nil, fmt.Errorf("onnxbuild: MLP %q: batch of %d values is not a multiple of %d", s.Name, len(batch), in)
	}
	var out []float32
	for row := range len(batch) / in {
		x := batch[row*in : (row+1)*in]
		for i, l := range s.Layers {
			y := make([]float32, l.Out)
			for o := range l.Out {
				sum := float64(l.B[o])
				for k := range l.In {
					sum += float64(x[k]) * float64(l.W[k*l.Out+o])
				}
				y[o] = float32(sum)
				if i < len(s.Layers)-1 {
					y[o] = activate(s.Activation, y[o])
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
// with head "softmax" is a 5 MB classifier for benchmarks.
func RandomMLP(name string, sizes []int, head string, seed int64) ([]byte, error) {
	spec, err := RandomMLPSpec(name, sizes, head, seed)
	if err != nil {
		return nil, err
	}
	return MLP(spec)
}

package onnxbuild

import (
	"fmt"

	"github.com/servekit/servekit/serving"
)

// Precision is the element types of a ready-made network: Elem for the
// weights and the computation, IO for its input and output. The zero
// value is FP32 throughout. Elem may be Float or Float16; IO defaults to
// Elem, and when they differ Cast nodes convert at the edges, as a
// mixed-precision deployment does (FP32 in and out, FP16 inside).
type Precision struct {
	Elem ElemType
	IO   ElemType
}

// FP16 is FP16 weights, computation, input and output.
var FP16 = Precision{Elem: Float16}

// MixedFP16 is FP16 weights and computation behind an FP32 input and
// output.
var MixedFP16 = Precision{Elem: Float16, IO: Float}

func (p Precision) elem() ElemType {
	if p.Elem == 0 {
		return Float
	}
	return p.Elem
}

func (p Precision) io() ElemType {
	if p.IO == 0 {
		return p.elem()
	}
	return p.IO
}

// String is "fp32", "fp16" or "fp16-in-fp32".
func (p Precision) String() string {
	name := map[ElemType]string{Float: "fp32", Float16: "fp16"}
	if p.elem() == p.io() {
		return name[p.elem()]
	}
	return name[p.elem()] + "-in-" + name[p.io()]
}

func (p Precision) check(what string) error {
	for _, t := range []ElemType{p.elem(), p.io()} {
		if t != Float && t != Float16 {
			return fmt.Errorf("%w: %s: element type %v, want FLOAT or FLOAT16", ErrInvalidGraph, what, t)
		}
	}
	return nil
}

// Weights is w as initializer data of the computation's type, for
// [Graph.Initializer].
func (p Precision) Weights(w []float32) any {
	if p.elem() == Float {
		return w
	}
	h := make([]uint16, len(w))
	for i, v := range w {
		h[i] = serving.Float32ToFP16(v)
	}
	return h
}

// round is v as the computation's type stores it, for Eval.
func (p Precision) round(v float32) float32 {
	if p.elem() == Float {
		return v
	}
	return serving.FP16ToFloat32(serving.Float32ToFP16(v))
}

// roundIO is v as the input and output type stores it, for Eval.
func (p Precision) roundIO(v float32) float32 {
	if p.io() == Float {
		return v
	}
	return serving.FP16ToFloat32(serving.Float32ToFP16(v))
}

// input declares the graph input and returns the value the computation
// reads: the input itself, or its Cast to the computation's type.
func (p Precision) input(g *Graph, name string, dims ...int64) string {
	g.Input(name, p.io(), dims...)
	if p.io() == p.elem() {
		return name
	}
	g.Node("Cast", []string{name}, []string{name + ".cast"}, AttrInt("to", int64(p.elem())))
	return name + ".cast"
}

// output names the value the computation's last node writes and declares
// the graph output, adding the Cast to the output type when needed.
func (p Precision) output(g *Graph, name string, dims ...int64) (last string, done func()) {
	if p.io() == p.elem() {
		return name, func() { g.Output(name, p.io(), dims...) }
	}
	return name + ".uncast", func() {
		g.Node("Cast", []string{name + ".uncast"}, []string{name}, AttrInt("to", int64(p.io())))
		g.Output(name, p.io(), dims...)
	}
}

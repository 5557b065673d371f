package onnxbuild_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// modelIO returns a function that takes a builder's two results straight
// from the call and decodes the model's inputs and outputs.
func modelIO(t *testing.T) func(model []byte, err error) (ins, outs []onnxbuild.ValueInfo) {
	return func(model []byte, err error) (ins, outs []onnxbuild.ValueInfo) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		ins, outs, err = onnxbuild.DecodeModelIO(model)
		if err != nil {
			t.Fatal(err)
		}
		return ins, outs
	}
}

func vi(name string, elem onnxbuild.ElemType, dims ...int64) onnxbuild.ValueInfo {
	if dims == nil {
		dims = []int64{}
	}
	return onnxbuild.ValueInfo{Name: name, IsTensor: true, Elem: elem, Dims: dims}
}

func checkIO(t *testing.T, got, want []onnxbuild.ValueInfo) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecodeModelIOBuilt(t *testing.T) {
	mustIO := modelIO(t)
	ins, outs := mustIO(onnxbuild.MultiIO())
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("a", onnxbuild.Float, -1, 4), vi("b", onnxbuild.Int64, -1, 2)})
	checkIO(t, outs, []onnxbuild.ValueInfo{
		vi("sum", onnxbuild.Float, -1, 4), vi("b2", onnxbuild.Int64, -1, 2), vi("label", onnxbuild.String, -1, 2),
	})

	ins, outs = mustIO(onnxbuild.FraudMLP())
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("features", onnxbuild.Float, -1, 8)})
	checkIO(t, outs, []onnxbuild.ValueInfo{vi("score", onnxbuild.Float, -1, 1)})

	for _, elem := range onnxbuild.ElemTypes {
		ins, outs = mustIO(onnxbuild.Identity(elem, -1, 3, -1))
		checkIO(t, ins, []onnxbuild.ValueInfo{vi("x", elem, -1, 3, -1)})
		checkIO(t, outs, []onnxbuild.ValueInfo{vi("y", elem, -1, 3, -1)})
	}
	ins, _ = mustIO(onnxbuild.Identity(onnxbuild.Bool)) // scalar
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("x", onnxbuild.Bool)})
}

// foreignModel hand-writes what older or richer exporters produce: a
// weight listed as an input, a sequence input, an output of unknown rank.
func foreignModel() []byte {
	msg := func(fields ...func([]byte) []byte) []byte {
		var b []byte
		for _, f := range fields {
			b = f(b)
		}
		return b
	}
	bytesField := func(num protowire.Number, v []byte) func([]byte) []byte {
		return func(b []byte) []byte {
			return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
		}
	}
	varint := func(num protowire.Number, v uint64) func([]byte) []byte {
		return func(b []byte) []byte {
			return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
		}
	}
	str := func(num protowire.Number, s string) func([]byte) []byte { return bytesField(num, []byte(s)) }
	tensorType := func(elem uint64, shape ...func([]byte) []byte) []byte {
		fields := []func([]byte) []byte{varint(1, elem)}
		if shape != nil {
			fields = append(fields, bytesField(2, msg(shape...)))
		}
		return msg(bytesField(1, msg(fields...)))
	}
	dim := func(f func([]byte) []byte) func([]byte) []byte { return bytesField(1, msg(f)) }
	value := func(name string, typ []byte) func([]byte) []byte {
		return bytesField(11, msg(str(1, name), bytesField(2, typ)))
	}
	output := func(name string, typ []byte) func([]byte) []byte {
		return bytesField(12, msg(str(1, name), bytesField(2, typ)))
	}
	graph := msg(
		bytesField(5, msg(varint(1, 2), varint(2, 1), str(8, "w"), bytesField(9, make([]byte, 8)))),
		value("x", tensorType(1, dim(varint(1, 1)), dim(str(2, "n")), bytesField(1, nil))),
		value("w", tensorType(1, dim(varint(1, 2)))),
		value("seq", msg(bytesField(4, msg(bytesField(1, tensorType(1)))))),
		output("y", tensorType(7)),
		output("m", msg(bytesField(5, msg(varint(1, 8), bytesField(2, tensorType(1)))))),
	)
	return msg(varint(1, 4), bytesField(7, graph))
}

func TestDecodeModelIOForeign(t *testing.T) {
	ins, outs, err := onnxbuild.DecodeModelIO(foreignModel())
	if err != nil {
		t.Fatal(err)
	}
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("x", onnxbuild.Float, 1, -1, -1), {Name: "seq"}})
	checkIO(t, outs, []onnxbuild.ValueInfo{{Name: "y", IsTensor: true, Elem: onnxbuild.Int64}, {Name: "m"}})

	if _, _, err := onnxbuild.DecodeModelIO([]byte{0x08, 0x08}); err == nil {
		t.Error("a model without a graph decoded")
	}
	if _, _, err := onnxbuild.DecodeModelIO([]byte{0x3a, 0x05, 0x01}); err == nil {
		t.Error("a truncated model decoded")
	}
}

func TestFraudMLPDeterministic(t *testing.T) {
	a, err := onnxbuild.FraudMLP()
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnxbuild.FraudMLP()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("FraudMLP differs between calls")
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "testdata", "models", "fraud.onnx"))
	if err != nil {
		t.Fatalf("%v (run go run ./internal/onnxbuild/cmd/genmodels)", err)
	}
	if !bytes.Equal(a, committed) {
		t.Error("testdata/models/fraud.onnx is stale: run go run ./internal/onnxbuild/cmd/genmodels")
	}
	if len(onnxbuild.FraudFeatures) != 8 {
		t.Errorf("%d feature names, want 8", len(onnxbuild.FraudFeatures))
	}
}

func TestFraudScores(t *testing.T) {
	// The demo should tell a risky payment from a routine one.
	typical := []float32{0, 0.5, 0.2, 0, 0, 0, 1, 0}
	risky := []float32{2.5, 0.1, 0.9, 2, 2, -1.5, 0, 1}
	scores, err := onnxbuild.FraudSpec().Eval(append(typical, risky...))
	if err != nil {
		t.Fatal(err)
	}
	if scores[0] > 0.1 || scores[1] < 0.9 {
		t.Errorf("scores typical=%.3f risky=%.3f, want <0.1 and >0.9", scores[0], scores[1])
	}
}

func TestRandomMLP(t *testing.T) {
	sizes := []int{6, 5, 3}
	a, _ := onnxbuild.RandomMLP("r", sizes, "softmax", 1)
	b, _ := onnxbuild.RandomMLP("r", sizes, "softmax", 1)
	c, err := onnxbuild.RandomMLP("r", sizes, "softmax", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Error("same seed must give the same model, another seed another one")
	}
	ins, outs := modelIO(t)(a, nil)
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("input", onnxbuild.Float, -1, 6)})
	checkIO(t, outs, []onnxbuild.ValueInfo{vi("output", onnxbuild.Float, -1, 3)})

	spec, err := onnxbuild.RandomMLPSpec("r", sizes, "softmax", 1)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := spec.Eval([]float32{1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6})
	if err != nil {
		t.Fatal(err)
	}
	for row := range 2 {
		var sum float64
		for _, p := range probs[row*3 : row*3+3] {
			sum += float64(p)
		}
		if math.Abs(sum-1) > 1e-6 {
			t.Errorf("row %d: softmax sums to %v", row, sum)
		}
	}
}

func TestGraphErrors(t *testing.T) {
	for name, build := range map[string]func(g *onnxbuild.Graph){
		"duplicate input": func(g *onnxbuild.Graph) {
			g.Input("x", onnxbuild.Float, 1)
			g.Input("x", onnxbuild.Float, 1)
		},
		"unknown node input": func(g *onnxbuild.Graph) {
			g.Node("Relu", []string{"nope"}, []string{"y"})
		},
		"node before its input": func(g *onnxbuild.Graph) {
			g.Node("Relu", []string{"h"}, []string{"y"})
			g.Node("Relu", []string{"x"}, []string{"h"})
		},
		"node output redefined": func(g *onnxbuild.Graph) {
			g.Node("Relu", []string{"x"}, []string{"x"})
		},
		"undefined output": func(g *onnxbuild.Graph) {
			g.Output("z", onnxbuild.Float, 1)
		},
		"unknown elem type": func(g *onnxbuild.Graph) {
			g.Input("c", 14, 1)
		},
		"initializer size": func(g *onnxbuild.Graph) {
			g.Initializer("w", onnxbuild.Float, []int64{3}, []float32{1, 2})
		},
		"initializer type": func(g *onnxbuild.Graph) {
			g.Initializer("w", onnxbuild.Float, []int64{1}, []int64{1})
		},
		"unnamed attribute": func(g *onnxbuild.Graph) {
			g.Node("Softmax", []string{"x"}, []string{"s"}, onnxbuild.AttrInt("", 1))
		},
		"bad attribute tensor": func(g *onnxbuild.Graph) {
			g.Node("Constant", nil, []string{"k"}, onnxbuild.AttrTensor("value", &onnxbuild.TensorData{Elem: onnxbuild.Float}))
		},
	} {
		g := onnxbuild.NewGraph("g")
		g.Input("x", onnxbuild.Float, 1)
		g.Node("Relu", []string{"x"}, []string{"y"})
		g.Output("y", onnxbuild.Float, 1)
		build(g)
		if _, err := g.Model(onnxbuild.DefaultOpset); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
			t.Errorf("%s: err = %v, want ErrInvalidGraph", name, err)
		}
	}
	g := onnxbuild.NewGraph("g")
	g.Input("x", onnxbuild.Float, 1)
	if _, err := g.Model(0); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
		t.Errorf("no outputs and opset 0: err = %v", err)
	}
}

func TestMLPErrors(t *testing.T) {
	ok := onnxbuild.Dense{In: 2, Out: 1, W: []float32{1, 2}, B: []float32{0}}
	for name, spec := range map[string]onnxbuild.MLPSpec{
		"no layers":      {},
		"short weights":  {Layers: []onnxbuild.Dense{{In: 2, Out: 1, W: []float32{1}, B: []float32{0}}}},
		"short biases":   {Layers: []onnxbuild.Dense{{In: 2, Out: 1, W: []float32{1, 2}}}},
		"sizes disagree": {Layers: []onnxbuild.Dense{ok, ok}},
		"zero size":      {Layers: []onnxbuild.Dense{{}}},
		"activation":     {Layers: []onnxbuild.Dense{ok}, Activation: "gelu"},
		"head":           {Layers: []onnxbuild.Dense{ok}, Head: "argmax"},
	} {
		if _, err := onnxbuild.MLP(spec); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := onnxbuild.RandomMLP("r", []int{4}, "", 1); err == nil {
		t.Error("one size: no error")
	}
	if _, err := (onnxbuild.MLPSpec{Layers: []onnxbuild.Dense{ok}}).Eval([]float32{1, 2, 3}); err == nil {
		t.Error("ragged batch: no error")
	}
}

// A graph is a list of statements; Model checks and serialises it.
func ExampleGraph_Model() {
	g := onnxbuild.NewGraph("scale")
	g.Input("x", onnxbuild.Float, -1, 3) // -1: dynamic batch
	g.Initializer("k", onnxbuild.Float, nil, []float32{0.5})
	g.Node("Mul", []string{"x", "k"}, []string{"y"})
	g.Output("y", onnxbuild.Float, -1, 3)
	model, err := g.Model(onnxbuild.DefaultOpset)
	if err != nil {
		panic(err)
	}
	ins, outs, err := onnxbuild.DecodeModelIO(model)
	if err != nil {
		panic(err)
	}
	fmt.Println(ins[0].Name, ins[0].Elem, ins[0].Dims, "→", outs[0].Name, outs[0].Elem, outs[0].Dims)

	g.Node("Relu", []string{"z"}, []string{"r"})
	_, err = g.Model(onnxbuild.DefaultOpset)
	fmt.Println(err)
	// Output:
	// x FLOAT [-1 3] → y FLOAT [-1 3]
	// onnxbuild: invalid graph: node 1 (Relu) reads "z", which nothing defined before it
}

func TestConvNet(t *testing.T) {
	spec, err := onnxbuild.RandomConvNetSpec("c", 3, 8, 6, []int{4, 5}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := onnxbuild.ConvNet(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := onnxbuild.ConvNet(spec)
	other, _ := onnxbuild.RandomConvNetSpec("c", 3, 8, 6, []int{4, 5}, 3, 2)
	c, _ := onnxbuild.ConvNet(other)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Error("same seed must give the same model, another seed another one")
	}
	ins, outs := modelIO(t)(a, nil)
	checkIO(t, ins, []onnxbuild.ValueInfo{vi("image", onnxbuild.Float, -1, 3, 8, 6)})
	checkIO(t, outs, []onnxbuild.ValueInfo{vi("logits", onnxbuild.Float, -1, 3)})
	for _, p := range []onnxbuild.Precision{onnxbuild.FP16, onnxbuild.MixedFP16} {
		spec.Precision = p
		m, err := onnxbuild.ConvNet(spec)
		if err != nil {
			t.Fatal(err)
		}
		io := p.IO
		if io == 0 {
			io = p.Elem
		}
		ins, outs := modelIO(t)(m, nil)
		checkIO(t, ins, []onnxbuild.ValueInfo{vi("image", io, -1, 3, 8, 6)})
		checkIO(t, outs, []onnxbuild.ValueInfo{vi("logits", io, -1, 3)})
	}

	// Eval by hand on a 1×1 net: one channel, a 2×2 image, a 3×3 kernel
	// that is 1 at the centre and 0.5 to the right, bias -1, then a head
	// that doubles the pooled mean and adds 3.
	tiny := onnxbuild.ConvNetSpec{Channels: 1, Height: 2, Width: 2,
		Blocks: []onnxbuild.ConvBlock{{In: 1, Out: 1, W: []float32{0, 0, 0, 0, 1, 0.5, 0, 0, 0}, B: []float32{-1}}},
		Head:   onnxbuild.Dense{In: 1, Out: 1, W: []float32{2}, B: []float32{3}}}
	// image [[1 2] [3 -9]]: conv = [[1+1-1, 2-1] [3-4.5-1, -9-1]] → ReLU [[1 1] [0 0]], mean 0.5.
	got, err := tiny.Eval([]float32{1, 2, 3, -9})
	if err != nil || len(got) != 1 || got[0] != 4 {
		t.Errorf("tiny Eval = %v, %v; want [4]", got, err)
	}
	tiny.Blocks[0].Pool = true
	// pooled: max(1,1,0,0) = 1 → head 2+3.
	if got, _ := tiny.Eval([]float32{1, 2, 3, -9}); len(got) != 1 || got[0] != 5 {
		t.Errorf("tiny Eval with pool = %v, want [5]", got)
	}
}

func TestConvNetErrors(t *testing.T) {
	ok, err := onnxbuild.RandomConvNetSpec("c", 1, 4, 4, []int{2}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(s *onnxbuild.ConvNetSpec)) onnxbuild.ConvNetSpec {
		s := ok
		s.Blocks = slices.Clone(ok.Blocks)
		f(&s)
		return s
	}
	for name, spec := range map[string]onnxbuild.ConvNetSpec{
		"no input":       mutate(func(s *onnxbuild.ConvNetSpec) { s.Height = 0 }),
		"no blocks":      mutate(func(s *onnxbuild.ConvNetSpec) { s.Blocks = nil }),
		"channels":       mutate(func(s *onnxbuild.ConvNetSpec) { s.Channels = 3 }),
		"short weights":  mutate(func(s *onnxbuild.ConvNetSpec) { s.Blocks[0].W = s.Blocks[0].W[1:] }),
		"short biases":   mutate(func(s *onnxbuild.ConvNetSpec) { s.Blocks[0].B = nil }),
		"pool too small": mutate(func(s *onnxbuild.ConvNetSpec) { s.Height, s.Width = 1, 1; s.Blocks[0].Pool = true }),
		"head":           mutate(func(s *onnxbuild.ConvNetSpec) { s.Head.In = 7 }),
		"precision":      mutate(func(s *onnxbuild.ConvNetSpec) { s.Precision = onnxbuild.Precision{Elem: onnxbuild.Double} }),
	} {
		if _, err := onnxbuild.ConvNet(spec); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := onnxbuild.RandomConvNetSpec("c", 1, 4, 4, []int{2, 0}, 2, 1); err == nil {
		t.Error("zero width: no error")
	}
	if _, err := ok.Eval([]float32{1, 2, 3}); err == nil {
		t.Error("ragged batch: no error")
	}
	if _, err := onnxbuild.MLP(onnxbuild.MLPSpec{Layers: []onnxbuild.Dense{{In: 1, Out: 1, W: []float32{1}, B: []float32{0}}},
		Precision: onnxbuild.Precision{Elem: onnxbuild.Int8}}); !errors.Is(err, onnxbuild.ErrInvalidGraph) {
		t.Errorf("MLP of INT8: err = %v", err)
	}
}

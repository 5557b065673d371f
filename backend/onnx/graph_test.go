package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/servekit/servekit/internal/alloctest"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "models", "tabular", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustGraph(t testing.TB, b []byte) *graph {
	t.Helper()
	g, err := readGraph(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestReadGraph(t *testing.T) {
	g := mustGraph(t, fixture(t, "logreg_str_zipmap"))
	var ops []string
	for _, n := range g.nodes {
		ops = append(ops, n.op)
	}
	if !slices.Equal(ops, []string{"LinearClassifier", "Identity", "ZipMap"}) {
		t.Errorf("ops %v", ops)
	}
	out := g.output("output_probability")
	if out == nil || out.typ.String() != "seq(map(string,tensor(float)))" {
		t.Fatalf("output_probability: %+v", out)
	}
	z := g.zipMapOf("output_probability")
	if z == nil || !slices.Equal(z.labels, []string{"bronze", "gold", "silver"}) || z.inputs[0] != "probabilities" {
		t.Fatalf("zipMapOf: %+v", z)
	}
	if l := g.labelsOf("probabilities"); !slices.Equal(l, z.labels) {
		t.Errorf("labelsOf(probabilities) = %v", l)
	}
	if l := g.labelsOf("output_label"); l != nil {
		t.Errorf("labelsOf(output_label) = %v, want none: it is not the scores", l)
	}
	gi := mustGraph(t, fixture(t, "logreg_int_nozipmap"))
	if l := gi.labelsOf("output_probability"); !slices.Equal(l, []string{"0", "1"}) {
		t.Errorf("labels through Normalizer and Identity: %v", l)
	}
	gd := mustGraph(t, fixture(t, "dict_input"))
	if in := gd.declaredInput("dict"); in == nil || in.typ.String() != "map(string,tensor(float))" {
		t.Errorf("dict input: %+v", in)
	}
}

// The rewrite leaves a valid model whose graph outputs ZipMap's input in
// place of the maps, without the ZipMap node, and every other byte as it was.
func TestZipMapRewrite(t *testing.T) {
	b := fixture(t, "lgbm_multi_zipmap")
	g := mustGraph(t, b)
	z := g.zipMapOf("output_probability")
	edits := zipMapEdits(g, z, g.output("output_probability"), len(z.labels))
	nb := rewrite(b, g, edits)
	ng := mustGraph(t, nb)
	for _, n := range ng.nodes {
		if n.op == "ZipMap" {
			t.Error("ZipMap node still there")
		}
	}
	var outs []string
	for _, o := range ng.outputs {
		outs = append(outs, o.name+" "+o.typ.String())
	}
	if want := []string{"label tensor(int64)", "probabilities tensor(float)"}; !slices.Equal(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
	// Only the graph field changed: the bytes before it are the same, and
	// so are the nodes and weights.
	if !bytes.Equal(nb[:g.field.off], b[:g.field.off]) || !bytes.Equal(nb[len(nb)-len(b[g.field.end:]):], b[g.field.end:]) {
		t.Error("bytes outside the graph changed")
	}
	o, n := g.nodes[0].field, ng.nodes[0].field
	if !bytes.Equal(nb[n.off:n.end], b[o.off:o.end]) {
		t.Error("the classifier node's bytes changed")
	}
}

func TestValueTypeString(t *testing.T) {
	f := valueType{kind: kindTensor, elem: elemFloat}
	for _, c := range []struct {
		t    valueType
		want string
	}{
		{f, "tensor(float)"},
		{valueType{kind: kindSequence, inner: &valueType{kind: kindMap, elem: elemInt64, inner: &f}}, "seq(map(int64,tensor(float)))"},
		{valueType{kind: kindOptional, inner: &valueType{kind: kindSequence, inner: &f}}, "optional(seq(tensor(float)))"},
		{valueType{kind: kindSparse, elem: 14}, "sparse_tensor(complex64)"},
		{valueType{kind: kindTensor, elem: 99}, "tensor(type99)"},
		{valueType{}, "unknown"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}

// readGraph takes any bytes without panicking, and allocates no more than
// the bytes it was given, whatever lengths they claim.
func FuzzReadGraph(f *testing.F) {
	for _, n := range []string{"linear_str", "rf_int_zipmap", "unservable_outputs", "dict_input"} {
		f.Add(fixture(f, n))
	}
	f.Add([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // graph claiming 4 GiB
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := readGraph(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, o := range g.outputs {
			_ = o.typ.String()
			_ = g.labelsOf(o.name)
			_ = g.zipMapOf(o.name)
		}
	})
}

func TestReadGraphBoundedByInput(t *testing.T) {
	// A graph field claiming 4 GiB in a 6-byte file is an error, not an
	// allocation.
	b := []byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := readGraph(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Fatal("no error")
		}
	})
	// The least of a few runs: TotalAlloc counts every goroutine's
	// allocations, and a single run once read 5,992 bytes under qemu.
	grew := alloctest.Bytes(5, func() { _, _ = readGraph(bytes.NewReader(b), int64(len(b))) })
	if grew > 4<<10 {
		t.Errorf("readGraph of 6 bytes allocated %d bytes (%v allocs)", grew, allocs)
	}
}

package serving_test

import (
	"math"
	"slices"
	"testing"

	"github.com/servekit/servekit/serving"
)

func TestClassify(t *testing.T) {
	probs := serving.TensorSpec{Name: "p", DataType: serving.FP32, Shape: []int64{-1, 3}, Labels: []string{"bronze", "gold", "silver"}}
	f32 := func(shape []int64, v ...float32) serving.Tensor {
		x, err := serving.NewTensor("p", shape, v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	nan := float32(math.NaN())
	i64, _ := serving.NewTensor("p", []int64{1, 3}, []int64{-5, math.MaxInt64, 7})
	half, _ := serving.NewFP16("p", []int64{1, 2}, []uint16{serving.Float32ToFP16(0.25), serving.Float32ToFP16(-1)})
	for _, c := range []struct {
		name  string
		t     serving.Tensor
		spec  serving.TensorSpec
		k     int64
		shape []int64
		want  []string
	}{
		{"top 2 of each row, labelled", f32([]int64{2, 3}, 0.1, 0.7, 0.2, 0.9375, 0.0625, 0), probs, 2,
			[]int64{2, 2}, []string{"0.700000:1:gold", "0.200000:2:silver", "0.937500:0:bronze", "0.062500:1:gold"}},
		{"no labels: score:index", f32([]int64{1, 3}, 0.1, 0.7, 0.2), serving.TensorSpec{Shape: []int64{-1, 3}}, 1,
			[]int64{1, 1}, []string{"0.700000:1"}},
		{"k above the classes", f32([]int64{1, 3}, 3, 1, 2), probs, 10,
			[]int64{1, 3}, []string{"3.000000:0:bronze", "2.000000:2:silver", "1.000000:1:gold"}},
		{"ties keep index order, NaN last", f32([]int64{1, 3}, nan, 0.5, 0.5), probs, 3,
			[]int64{1, 3}, []string{"0.500000:1:gold", "0.500000:2:silver", "nan:0:bronze"}},
		{"not batchable: one row", f32([]int64{3}, 0.2, 0.3, 0.5), serving.TensorSpec{Shape: []int64{3}, Labels: probs.Labels}, 2,
			[]int64{2}, []string{"0.500000:2:silver", "0.300000:1:gold"}},
		{"no spec, rank 2: rows", f32([]int64{2, 2}, 1, 2, 4, 3), serving.TensorSpec{}, 1,
			[]int64{2, 1}, []string{"2.000000:1", "4.000000:0"}},
		{"zero rows", f32([]int64{0, 3}), probs, 2, []int64{0, 2}, nil},
		{"integers exactly", i64, serving.TensorSpec{Shape: []int64{-1, 3}}, 2,
			[]int64{1, 2}, []string{"9223372036854775807:1", "7:2"}},
		{"FP16", half, serving.TensorSpec{Shape: []int64{-1, 2}, Labels: []string{"a", "b"}}, 2,
			[]int64{1, 2}, []string{"0.250000:0:a", "-1.000000:1:b"}},
		{"infinities", f32([]int64{1, 2}, float32(math.Inf(-1)), float32(math.Inf(1))), serving.TensorSpec{Shape: []int64{-1, 2}}, 2,
			[]int64{1, 2}, []string{"inf:1", "-inf:0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := serving.Classify(c.t, c.spec, c.k)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := got.Strings()
			if got.Name != "p" || got.DataType != serving.Bytes || !slices.Equal(got.Shape, c.shape) || !slices.Equal(s, c.want) {
				t.Errorf("got %s %v%v %q, want BYTES%v %q", got.Name, got.DataType, got.Shape, s, c.shape, c.want)
			}
		})
	}
}

func TestClassifyRefuses(t *testing.T) {
	f, _ := serving.NewTensor("p", []int64{1, 2}, []float32{1, 2})
	b, _ := serving.NewStrings("label", []int64{1}, []string{"x"})
	o, _ := serving.NewTensor("ok", []int64{1}, []bool{true})
	for _, c := range []struct {
		t serving.Tensor
		k int64
	}{{f, 0}, {f, -1}, {f, serving.MaxClassification + 1}, {b, 1}, {o, 1}} {
		if _, err := serving.Classify(c.t, serving.TensorSpec{}, c.k); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("%s %v k=%d: %v, want InvalidArgument", c.t.Name, c.t.DataType, c.k, err)
		}
	}
}

// A huge k costs what the tensor holds, not what k says.
func TestClassifyBoundedByTheTensor(t *testing.T) {
	f, _ := serving.NewTensor("p", []int64{1, 2}, []float32{1, 2})
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := serving.Classify(f, serving.TensorSpec{}, serving.MaxClassification); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 8 {
		t.Errorf("%v allocations for 2 values", allocs)
	}
}

// Rows without values cost nothing, however many the shape claims.
func TestClassifyEmptyRows(t *testing.T) {
	e, err := serving.NewTensor("p", []int64{1 << 30, 0}, []float32{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := serving.Classify(e, serving.TensorSpec{}, 3)
	if err != nil || !slices.Equal(got.Shape, []int64{1 << 30, 0}) || got.Len() != 0 {
		t.Fatalf("%v %v", got, err)
	}
}

func TestClassifyOutputs(t *testing.T) {
	md := serving.Metadata{Name: "m", Outputs: []serving.TensorSpec{
		{Name: "label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "p", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"no", "yes"}},
	}}
	l, _ := serving.NewStrings("label", []int64{2}, []string{"yes", "no"})
	p, _ := serving.NewTensor("p", []int64{2, 2}, []float32{0.25, 0.75, 0.5, 0.125})
	outs := []serving.Tensor{l, p}
	got, err := serving.ClassifyOutputs(md, outs, []serving.Classification{{Output: "p", K: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := got[1].Strings()
	if got[0].Name != "label" || !slices.Equal(s, []string{"0.750000:1:yes", "0.500000:0:no"}) {
		t.Errorf("got %v %q", got[0].Name, s)
	}
	if outs[1].DataType != serving.FP32 {
		t.Error("the caller's outputs were modified")
	}
	if same, _ := serving.ClassifyOutputs(md, outs, nil); &same[0] != &outs[0] {
		t.Error("nothing to classify should cost nothing")
	}
	if _, err := serving.ClassifyOutputs(md, outs, []serving.Classification{{Output: "q", K: 1}}); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("unknown output: %v", err)
	}
	if _, err := serving.ClassifyOutputs(md, outs, []serving.Classification{{Output: "label", K: 1}}); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("classifying strings: %v", err)
	}
}

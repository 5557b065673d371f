package rollout

import (
	"math"
	"testing"

	"github.com/servekit/servekit/serving"
)

func tensor[T serving.Element](t *testing.T, name string, shape []int64, data []T) serving.Tensor {
	t.Helper()
	x, err := serving.NewTensor(name, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(a), math.Abs(b)) }

func TestCompareArgmax(t *testing.T) {
	// Three rows of three classes: rows 0 and 2 pick the same class, row 1
	// differs (class 1 against class 2).
	p := tensor(t, "probs", []int64{3, 3}, []float32{0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.2, 0.2, 0.6})
	c := tensor(t, "probs", []int64{3, 3}, []float32{0.6, 0.3, 0.1, 0.1, 0.4, 0.5, 0.1, 0.3, 0.6})
	r := compareOutput(Auto(), p, c, true)
	if r.rule.String() != "argmax" || r.decisions != 3 || r.agreed != 2 || r.mismatched {
		t.Fatalf("rule %v decisions %d agreed %d mismatched %v, want argmax 3 2 false", r.rule, r.decisions, r.agreed, r.mismatched)
	}
	// Differences in float64 of the float32 values: |0.7-0.6|, |0.2-0.3|,
	// 0, 0, |0.6-0.4|, |0.3-0.5|, |0.2-0.1|, |0.2-0.3|, 0.
	d := func(a, b float32) float64 { return math.Abs(float64(a) - float64(b)) }
	diffs := []float64{d(0.7, 0.6), d(0.2, 0.3), 0, 0, d(0.6, 0.4), d(0.3, 0.5), d(0.2, 0.1), d(0.2, 0.3), 0}
	var sum, maxAbs float64
	for _, x := range diffs {
		sum += x
		maxAbs = max(maxAbs, x)
	}
	maxRel := d(0.2, 0.1) / float64(float32(0.2)) // 0.5: the largest |p-c|/max(|p|,|c|)
	if r.elements != 9 || !near(r.sumAbs, sum) || !near(r.maxAbs, maxAbs) || !near(r.maxRel, maxRel) {
		t.Errorf("elements %d sum %v max %v rel %v, want 9 %v %v %v", r.elements, r.sumAbs, r.maxAbs, r.maxRel, sum, maxAbs, maxRel)
	}
}

func TestArgmaxTiesAndNaN(t *testing.T) {
	nan := float32(math.NaN())
	// Row 0: tie, the first wins on both sides. Row 1: NaN never wins, so
	// class 1 on both. Row 2: all NaN on both sides: both -1, agreed.
	// Row 3: NaN on the primary only: class 2 against class 0.
	p := tensor(t, "y", []int64{4, 3}, []float32{1, 1, 0, nan, 5, 1, nan, nan, nan, nan, 0, 3})
	c := tensor(t, "y", []int64{4, 3}, []float32{2, 2, 1, 4, 5, nan, nan, nan, nan, 4, 0, 3})
	r := compareOutput(Argmax(), p, c, true)
	if r.decisions != 4 || r.agreed != 3 {
		t.Errorf("decisions %d agreed %d, want 4 3", r.decisions, r.agreed)
	}
	// NaN on one side only: row 1 element 0 (NaN vs 4), row 1 element 2
	// (1 vs NaN), row 3 element 0 (NaN vs 4); both-NaN elements are equal.
	if r.nonFinite != 3 || r.elements != 9 {
		t.Errorf("nonFinite %d elements %d, want 3 9", r.nonFinite, r.elements)
	}
}

func TestCompareThreshold(t *testing.T) {
	// Scores [4, 1]: the default for a last dim of 1 is threshold(0.5).
	p := tensor(t, "score", []int64{4, 1}, []float64{0.1, 0.5, 0.9, 0.49})
	c := tensor(t, "score", []int64{4, 1}, []float64{0.2, 0.49, 0.8, 0.5})
	r := compareOutput(Auto(), p, c, true)
	if r.rule.String() != "threshold(0.5)" || r.decisions != 4 || r.agreed != 2 {
		t.Fatalf("rule %v decisions %d agreed %d, want threshold(0.5) 4 2", r.rule, r.decisions, r.agreed)
	}
	if !near(r.maxAbs, 0.1) || !near(r.sumAbs, 0.1+0.01+0.1+0.01) || !near(r.maxRel, 0.5) {
		t.Errorf("max %v sum %v rel %v, want 0.1 0.22 0.5", r.maxAbs, r.sumAbs, r.maxRel)
	}
	// A custom threshold moves the decisions: at 0.15 only row 0 differs.
	if r := compareOutput(Threshold(0.15), p, c, true); r.agreed != 3 {
		t.Errorf("threshold(0.15): agreed %d, want 3", r.agreed)
	}
}

func TestCompareTolerance(t *testing.T) {
	inf := math.Inf(1)
	p := tensor(t, "emb", []int64{6}, []float64{1, 100, 0, inf, math.NaN(), 1})
	c := tensor(t, "emb", []int64{6}, []float64{1.05, 100.5, 0.2, inf, math.NaN(), inf})
	// abs 0.1 + rel 0.01·|p|: 1→1.05 within 0.11; 100→100.5 within 1.1;
	// 0→0.2 not within 0.1; inf=inf and NaN=NaN agree; 1→inf does not.
	r := compareOutput(Tolerance(0.1, 0.01), p, c, true)
	if r.decisions != 6 || r.agreed != 4 {
		t.Errorf("decisions %d agreed %d, want 6 4", r.decisions, r.agreed)
	}
	if r.nonFinite != 1 || r.elements != 5 || !near(r.maxAbs, 0.5) || !near(r.maxRel, 1) {
		t.Errorf("nonFinite %d elements %d max %v rel %v, want 1 5 0.5 1", r.nonFinite, r.elements, r.maxAbs, r.maxRel)
	}
}

func TestCompareExactAndTypes(t *testing.T) {
	// Integer labels default to exact.
	p := tensor(t, "label", []int64{3}, []int64{1, 2, 3})
	c := tensor(t, "label", []int64{3}, []int64{1, 0, 3})
	if r := compareOutput(Auto(), p, c, true); r.rule.String() != "exact" || r.agreed != 2 || r.decisions != 3 {
		t.Errorf("int64: rule %v agreed %d decisions %d, want exact 2 3", r.rule, r.agreed, r.decisions)
	}
	// BYTES compare by bytes; no differences are measured.
	ps, _ := serving.NewStrings("tag", []int64{2}, []string{"a", "b"})
	cs, _ := serving.NewStrings("tag", []int64{2}, []string{"a", "c"})
	if r := compareOutput(Auto(), ps, cs, true); r.agreed != 1 || r.decisions != 2 || r.elements != 0 {
		t.Errorf("bytes: agreed %d decisions %d elements %d, want 1 2 0", r.agreed, r.decisions, r.elements)
	}
	// An FP16 challenger compares with an FP32 primary.
	p32 := tensor(t, "y", []int64{1, 2}, []float32{0.25, 0.75})
	h, _ := serving.NewFP16("y", []int64{1, 2}, []uint16{serving.Float32ToFP16(0.25), serving.Float32ToFP16(0.5)})
	if r := compareOutput(Auto(), p32, h, true); r.mismatched || r.agreed != 1 || !near(r.maxAbs, 0.25) {
		t.Errorf("fp16: mismatched %v agreed %d max %v, want false 1 0.25", r.mismatched, r.agreed, r.maxAbs)
	}
}

func TestCompareMismatch(t *testing.T) {
	p := tensor(t, "y", []int64{2, 2}, []float32{1, 0, 0, 1})
	strs, _ := serving.NewStrings("y", []int64{2, 2}, []string{"a", "b", "c", "d"})
	for name, c := range map[string]struct {
		c     serving.Tensor
		found bool
	}{
		"missing":   {serving.Tensor{}, false},
		"shape":     {tensor(t, "y", []int64{4, 1}, []float32{1, 0, 0, 1}), true},
		"rank":      {tensor(t, "y", []int64{4}, []float32{1, 0, 0, 1}), true},
		"bytes":     {strs, true},
		"invalid":   {serving.Tensor{Name: "y", DataType: serving.FP32, Shape: []int64{2, 2}}, true},
		"too short": {tensor(t, "y", []int64{2, 1}, []float32{1, 0}), true},
	} {
		r := compareOutput(Auto(), p, c.c, c.found)
		// Every decision of the primary counts, none agreed.
		if !r.mismatched || r.decisions != 2 || r.agreed != 0 || r.elements != 0 {
			t.Errorf("%s: mismatched %v decisions %d agreed %d elements %d, want true 2 0 0", name, r.mismatched, r.decisions, r.agreed, r.elements)
		}
	}
}

func TestComparisonValid(t *testing.T) {
	for _, c := range []Comparison{Threshold(math.NaN()), Tolerance(-1, 0), Tolerance(0, math.Inf(1)), {kind: 99}} {
		if c.valid() {
			t.Errorf("%v: valid, want invalid", c)
		}
	}
	for _, c := range []Comparison{Auto(), Argmax(), Exact(), Threshold(-3), Tolerance(0, 0)} {
		if !c.valid() {
			t.Errorf("%v: invalid, want valid", c)
		}
	}
	if s := Tolerance(0.001, 0.01).String(); s != "tolerance(0.001,0.01)" {
		t.Errorf("String: %s", s)
	}
}

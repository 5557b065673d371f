package rollout

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/servekit/servekit/serving"
)

// Comparison is how a Shadow decides whether the primary and the challenger
// agree on one output. Build one with Argmax, Threshold, Tolerance or Exact
// and give it to WithComparison; the zero Comparison (Auto) picks one from
// the output's datatype and shape, as the package doc describes.
type Comparison struct {
	kind      compareKind
	threshold float64 // Threshold
	abs, rel  float64 // Tolerance
}

type compareKind uint8

const (
	compareAuto compareKind = iota
	compareArgmax
	compareThreshold
	compareTolerance
	compareExact
)

// Auto picks the comparison from the primary's output: Exact for BYTES,
// BOOL and integer outputs; for floating-point ones Argmax when the output
// has rank 2 or more and a last dimension of at least 2 (classes of a
// classifier), else Threshold(0.5) (a score per row).
func Auto() Comparison { return Comparison{} }

// Argmax compares classifier outputs [rows × classes]: one decision per row
// (the slice along the last dimension), agreed when both sides pick the same
// class. NaN never wins; of equal maxima the first wins, as in NumPy.
func Argmax() Comparison { return Comparison{kind: compareArgmax} }

// Threshold compares scores: one decision per element, agreed when both
// sides fall on the same side of t (value ≥ t is positive; NaN is negative).
func Threshold(t float64) Comparison { return Comparison{kind: compareThreshold, threshold: t} }

// Tolerance compares regression outputs and embeddings: one decision per
// element, agreed when |primary − challenger| ≤ abs + rel·|primary|, the rule
// of NumPy's isclose with the primary as the reference. Equal infinities and
// two NaNs agree.
func Tolerance(abs, rel float64) Comparison {
	return Comparison{kind: compareTolerance, abs: abs, rel: rel}
}

// Exact compares element by element: equal values (two NaNs are equal),
// equal bytes.
func Exact() Comparison { return Comparison{kind: compareExact} }

// String names the rule as Snapshot reports it: "auto", "argmax",
// "threshold(0.5)", "tolerance(0.001,0.01)" or "exact".
func (c Comparison) String() string {
	switch c.kind {
	case compareArgmax:
		return "argmax"
	case compareThreshold:
		return "threshold(" + ftoa(c.threshold) + ")"
	case compareTolerance:
		return "tolerance(" + ftoa(c.abs) + "," + ftoa(c.rel) + ")"
	case compareExact:
		return "exact"
	}
	return "auto"
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (c Comparison) valid() bool {
	ok := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch c.kind {
	case compareThreshold:
		return ok(c.threshold)
	case compareTolerance:
		return ok(c.abs) && ok(c.rel) && c.abs >= 0 && c.rel >= 0
	}
	return c.kind <= compareExact
}

// resolve returns the rule for output t: c itself unless c is Auto.
func (c Comparison) resolve(t serving.Tensor) Comparison {
	if c.kind != compareAuto {
		return c
	}
	switch t.DataType {
	case serving.FP16, serving.BF16, serving.FP32, serving.FP64:
		if n := len(t.Shape); n >= 2 && t.Shape[n-1] >= 2 {
			return Argmax()
		}
		return Threshold(0.5)
	}
	return Exact()
}

// outputResult is the comparison of one output of one mirrored pair.
type outputResult struct {
	rule              Comparison
	decisions, agreed int64
	// mismatched: the challenger's output was missing, invalid, of another
	// kind (BYTES against numbers) or of another shape. Its decisions are
	// then all counted as disagreements and no difference is measured.
	mismatched bool
	// Element-wise differences of numeric outputs, over the elements where
	// both values are finite or equal (elements); nonFinite counts the
	// others, where one side is NaN or infinite and the two differ.
	elements, nonFinite    int64
	sumAbs, maxAbs, maxRel float64
}

// compareOutput compares the primary's output p with the challenger's c
// (found says whether the challenger answered it at all) under rule. Both
// tensors are read, never kept.
func compareOutput(rule Comparison, p, c serving.Tensor, found bool) outputResult {
	r := outputResult{rule: rule.resolve(p)}
	if p.Validate() != nil { // a broken primary answer: nothing to count
		r.mismatched = true
		return r
	}
	pv, pNum := floats(p)
	r.decisions = decisions(r.rule, p)
	if !found || c.Validate() != nil || c.Len() != p.Len() || !slices.Equal(p.Shape, c.Shape) {
		r.mismatched = true
		return r
	}
	if p.DataType == serving.Bytes || c.DataType == serving.Bytes {
		if p.DataType != c.DataType {
			r.mismatched = true
			return r
		}
		pb, _ := serving.Values[[]byte](p)
		cb, _ := serving.Values[[]byte](c)
		for i := range pb {
			if bytes.Equal(pb[i], cb[i]) {
				r.agreed++
			}
		}
		return r
	}
	cv, cNum := floats(c)
	if !pNum || !cNum {
		r.mismatched = true
		return r
	}
	n := p.Len()
	r.differences(pv, cv, n)
	switch r.rule.kind {
	case compareArgmax:
		r.agreed = agreedArgmax(pv, cv, n, rowLen(p.Shape))
	case compareThreshold:
		t := r.rule.threshold
		for i := range n {
			if (pv(i) >= t) == (cv(i) >= t) {
				r.agreed++
			}
		}
	case compareTolerance:
		for i := range n {
			a, b := pv(i), cv(i)
			if same(a, b) || math.Abs(a-b) <= r.rule.abs+r.rule.rel*math.Abs(a) {
				r.agreed++
			}
		}
	default:
		for i := range n {
			if same(pv(i), cv(i)) {
				r.agreed++
			}
		}
	}
	return r
}

// differences measures element-wise absolute and relative differences. The
// relative difference is |a−b| / max(|a|,|b|): symmetric, within [0, 2], and
// 0 when both are 0, so it never divides by zero or blows up near it.
func (r *outputResult) differences(pv, cv func(int) float64, n int) {
	for i := range n {
		a, b := pv(i), cv(i)
		if same(a, b) {
			r.elements++
			continue
		}
		if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
			r.nonFinite++
			continue
		}
		d := math.Abs(a - b)
		if math.IsInf(d, 0) { // finite values a float64 apart: no usable difference
			r.nonFinite++
			continue
		}
		r.elements++
		r.sumAbs += d
		r.maxAbs = max(r.maxAbs, d)
		r.maxRel = max(r.maxRel, d/max(math.Abs(a), math.Abs(b)))
	}
}

// same is equality where two NaNs are equal.
func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// decisions is how many decisions rule makes on t: rows for Argmax,
// elements otherwise.
func decisions(rule Comparison, t serving.Tensor) int64 {
	if rule.kind == compareArgmax {
		if w := rowLen(t.Shape); w > 0 {
			return int64(t.Len() / w)
		}
		return 0
	}
	return int64(t.Len())
}

// rowLen is the length of the last dimension (1 for a scalar).
func rowLen(shape []int64) int {
	if len(shape) == 0 {
		return 1
	}
	return int(shape[len(shape)-1])
}

func agreedArgmax(pv, cv func(int) float64, n, w int) int64 {
	if w <= 0 {
		return 0
	}
	var agreed int64
	for lo := 0; lo+w <= n; lo += w {
		if argmax(pv, lo, w) == argmax(cv, lo, w) {
			agreed++
		}
	}
	return agreed
}

// argmax is the offset of the largest value in [lo, lo+w), the first of
// equal ones, skipping NaN; -1 when all are NaN.
func argmax(v func(int) float64, lo, w int) int {
	best, bi := math.Inf(-1), -1
	for i := range w {
		x := v(lo + i)
		if !math.IsNaN(x) && (bi < 0 || x > best) {
			best, bi = x, i
		}
	}
	return bi
}

// floats returns an accessor reading element i of a numeric tensor as
// float64, typed once per tensor rather than per element (Float64At
// switches on every call). ok is false for BYTES and invalid tensors.
// Datatypes may differ between the two sides: an FP16 challenger compares
// with an FP32 primary.
func floats(t serving.Tensor) (func(int) float64, bool) {
	if t.Validate() != nil {
		return nil, false
	}
	switch d := t.Data().(type) {
	case []float32:
		return func(i int) float64 { return float64(d[i]) }, true
	case []float64:
		return func(i int) float64 { return d[i] }, true
	case []int64:
		return func(i int) float64 { return float64(d[i]) }, true
	case []int32:
		return func(i int) float64 { return float64(d[i]) }, true
	case [][]byte:
		return nil, false
	}
	// The rarer types, FP16 and BF16 included, go through Float64At.
	return func(i int) float64 { v, _ := t.Float64At(i); return v }, true
}

// ParseComparison reads a Comparison as String writes it: "auto",
// "argmax", "exact", "threshold(T)" or "tolerance(ABS,REL)", so that
// configuration files and the admin API name rules the way Snapshot
// reports them.
func ParseComparison(s string) (Comparison, error) {
	bad := func() (Comparison, error) {
		return Comparison{}, fmt.Errorf("%w: comparison %q: want auto, argmax, exact, threshold(T) or tolerance(ABS,REL)", errShadowConfig, s)
	}
	var c Comparison
	switch name, args, ok := strings.Cut(strings.TrimSpace(s), "("); {
	case !ok && name == "auto":
		c = Auto()
	case !ok && name == "argmax":
		c = Argmax()
	case !ok && name == "exact":
		c = Exact()
	case ok && strings.HasSuffix(args, ")"):
		nums := strings.Split(strings.TrimSuffix(args, ")"), ",")
		vals := make([]float64, len(nums))
		for i, n := range nums {
			v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil {
				return bad()
			}
			vals[i] = v
		}
		switch {
		case name == "threshold" && len(vals) == 1:
			c = Threshold(vals[0])
		case name == "tolerance" && len(vals) == 2:
			c = Tolerance(vals[0], vals[1])
		default:
			return bad()
		}
	default:
		return bad()
	}
	if !c.valid() {
		return bad()
	}
	return c, nil
}

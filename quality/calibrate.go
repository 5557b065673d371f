package quality

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Calibration names how a classifier's scores are turned into
// probabilities before CBPE reads them.
type Calibration string

// The calibrations.
const (
	// Auto calibrates with isotonic regression when that lowers the
	// calibration error on held-out folds of the reference, as NannyML
	// decides: 3 stratified folds, the mean calibration error of the
	// calibrated and the raw scores compared. Otherwise the scores are used
	// as they are.
	Auto Calibration = "auto"
	// Isotonic fits a non-decreasing step function by pool-adjacent-
	// violators and interpolates linearly between its steps, as
	// scikit-learn's IsotonicRegression(out_of_bounds="clip").
	Isotonic Calibration = "isotonic"
	// Platt fits a sigmoid 1/(1+exp(a·s+b)) with Platt's smoothed targets,
	// as scikit-learn's CalibratedClassifierCV(method="sigmoid") does (by
	// Newton's method here, to the same optimum).
	Platt Calibration = "platt"
	// NoCalibration trusts the scores as probabilities.
	NoCalibration Calibration = "none"
)

// Calibrator maps a score to a calibrated probability. A Reference holds
// one per class (one for a binary task). The zero value is the identity
// clipped to [0, 1].
type Calibrator struct {
	Method Calibration `json:"method"`
	// X and Y are the isotonic steps: increasing scores and their
	// non-decreasing probabilities.
	X []float64 `json:"x,omitempty"`
	Y []float64 `json:"y,omitempty"`
	// A and B are Platt's sigmoid 1/(1+exp(A·s+B)).
	A float64 `json:"a,omitempty"`
	B float64 `json:"b,omitempty"`
}

// Apply returns the calibrated probability of score s.
func (c *Calibrator) Apply(s float64) float64 {
	switch c.Method {
	case Isotonic:
		x, y := c.X, c.Y
		if s <= x[0] {
			return y[0]
		}
		if s >= x[len(x)-1] {
			return y[len(y)-1]
		}
		i, _ := slices.BinarySearch(x, s) // x[i-1] < s <= x[i]
		if x[i] == s {
			return y[i]
		}
		// scipy's interp1d, which IsotonicRegression predicts with.
		slope := (y[i] - y[i-1]) / (x[i] - x[i-1])
		return float64(slope*(s-x[i-1])) + y[i-1]
	case Platt:
		return 1 / (1 + math.Exp(c.A*s+c.B))
	}
	return clip01(s)
}

func (c *Calibrator) validate() error {
	switch c.Method {
	case NoCalibration:
		return nil
	case Isotonic:
		if len(c.X) == 0 || len(c.X) != len(c.Y) {
			return fmt.Errorf("isotonic calibrator: %d steps and %d values", len(c.X), len(c.Y))
		}
		for i := range c.X {
			if !finite(c.X[i]) || !(c.Y[i] >= 0 && c.Y[i] <= 1) ||
				i > 0 && (c.X[i] <= c.X[i-1] || c.Y[i] < c.Y[i-1]) {
				return errors.New("isotonic calibrator: steps must increase and values stay in [0, 1] without decreasing")
			}
		}
		return nil
	case Platt:
		if !finite(c.A) || !finite(c.B) {
			return errors.New("platt calibrator: a and b must be finite")
		}
		return nil
	}
	return fmt.Errorf("calibrator method %q, want %q, %q or %q", c.Method, Isotonic, Platt, NoCalibration)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// fitIsotonic fits isotonic regression of y (0 or 1) on s: equal scores
// are pooled first (their mean label, weighted by their number), then
// pool-adjacent-violators makes the means non-decreasing.
func fitIsotonic(s, y []float64) Calibrator {
	order := make([]int, len(s))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpFloat(s[a], s[b]) })
	type block struct{ x, sum, w float64 }
	var xs []block
	for _, i := range order {
		if n := len(xs); n > 0 && xs[n-1].x == s[i] {
			xs[n-1].sum += y[i]
			xs[n-1].w++
			continue
		}
		xs = append(xs, block{s[i], y[i], 1})
	}
	// PAV over the unique scores: a stack of pooled blocks, each covering
	// a run of unique scores [start, end).
	type pool struct {
		sum, w     float64
		start, end int
	}
	var st []pool
	for j, b := range xs {
		st = append(st, pool{b.sum, b.w, j, j + 1})
		for len(st) > 1 {
			a, c := st[len(st)-2], st[len(st)-1]
			if a.sum/a.w <= c.sum/c.w {
				break
			}
			st = st[:len(st)-2]
			st = append(st, pool{a.sum + c.sum, a.w + c.w, a.start, c.end})
		}
	}
	cal := Calibrator{Method: Isotonic, X: make([]float64, len(xs)), Y: make([]float64, len(xs))}
	for _, p := range st {
		for j := p.start; j < p.end; j++ {
			cal.X[j], cal.Y[j] = xs[j].x, p.sum/p.w
		}
	}
	// Drop the inner points of flat runs: interpolation is unchanged.
	keep := 0
	for j := range cal.X {
		if j > 0 && j < len(cal.X)-1 && cal.Y[j] == cal.Y[j-1] && cal.Y[j] == cal.Y[j+1] {
			continue
		}
		cal.X[keep], cal.Y[keep] = cal.X[j], cal.Y[j]
		keep++
	}
	cal.X, cal.Y = cal.X[:keep], cal.Y[:keep]
	return cal
}

// fitPlatt fits Platt's sigmoid by Newton's method with a backtracking
// line search (Lin, Lin and Weng's formulation, numerically stable), on
// Platt's targets: (N₊+1)/(N₊+2) for positives, 1/(N₋+2) for negatives.
func fitPlatt(s, y []float64) Calibrator {
	var prior1, prior0 float64
	for _, v := range y {
		if v == 1 {
			prior1++
		} else {
			prior0++
		}
	}
	hi, lo := (prior1+1)/(prior1+2), 1/(prior0+2)
	target := func(i int) float64 {
		if y[i] == 1 {
			return hi
		}
		return lo
	}
	// f(a, b) = Σ t·(a·s+b) + log(1+exp(−(a·s+b))), written stably.
	obj := func(a, b float64) float64 {
		var f float64
		for i, x := range s {
			z := a*x + b
			if z >= 0 {
				f += target(i)*z + math.Log1p(math.Exp(-z))
			} else {
				f += (target(i)-1)*z + math.Log1p(math.Exp(z))
			}
		}
		return f
	}
	a, b := 0.0, math.Log((prior0+1)/(prior1+1))
	f := obj(a, b)
	for range 100 {
		var h11, h22, h21, g1, g2 float64
		h11, h22 = 1e-12, 1e-12 // keeps the Hessian positive definite
		for i, x := range s {
			z := a*x + b
			var p, q float64 // p = 1/(1+exp(z)), q = 1-p
			if z >= 0 {
				p = math.Exp(-z) / (1 + math.Exp(-z))
				q = 1 / (1 + math.Exp(-z))
			} else {
				p = 1 / (1 + math.Exp(z))
				q = math.Exp(z) / (1 + math.Exp(z))
			}
			d2 := p * q
			h11 += x * x * d2
			h22 += d2
			h21 += x * d2
			d1 := target(i) - p
			g1 += x * d1
			g2 += d1
		}
		if math.Abs(g1) < 1e-10*max(1, math.Abs(f)) && math.Abs(g2) < 1e-10*max(1, math.Abs(f)) {
			break
		}
		det := h11*h22 - h21*h21
		da := -(h22*g1 - h21*g2) / det
		db := -(-h21*g1 + h11*g2) / det
		gd := g1*da + g2*db
		step := 1.0
		for step >= 1e-12 {
			na, nb := a+step*da, b+step*db
			if nf := obj(na, nb); nf < f+1e-4*step*gd {
				a, b, f = na, nb, nf
				break
			}
			step /= 2
		}
		if step < 1e-12 {
			break
		}
	}
	return Calibrator{Method: Platt, A: a, B: b}
}

// fitCalibrator fits the method asked for; Auto picks isotonic or none by
// cross-validated calibration error.
func fitCalibrator(method Calibration, s, y []float64) Calibrator {
	switch method {
	case Isotonic:
		return fitIsotonic(s, y)
	case Platt:
		return fitPlatt(s, y)
	case NoCalibration:
		return Calibrator{Method: NoCalibration}
	}
	if calibrationHelps(s, y) {
		return fitIsotonic(s, y)
	}
	return Calibrator{Method: NoCalibration}
}

// calibrationHelps compares, over 3 stratified folds (every third row of
// each class, in order: deterministic), the calibration error of isotonic
// calibration fitted on the other folds with that of the raw scores.
func calibrationHelps(s, y []float64) bool {
	const folds = 3
	fold := make([]int, len(s))
	var seen [2]int
	for i, v := range y {
		c := int(v)
		fold[i] = seen[c] % folds
		seen[c]++
	}
	if seen[0] < folds || seen[1] < folds {
		return false
	}
	var raw, cal float64
	for f := range folds {
		var ts, ty, hs, hy []float64
		for i := range s {
			if fold[i] == f {
				hs, hy = append(hs, s[i]), append(hy, y[i])
			} else {
				ts, ty = append(ts, s[i]), append(ty, y[i])
			}
		}
		c := fitIsotonic(ts, ty)
		raw += ece(len(hs), func(i int) (float64, float64) { return clip01(hs[i]), hy[i] })
		cal += ece(len(hs), func(i int) (float64, float64) { return c.Apply(hs[i]), hy[i] })
	}
	return cal < raw
}

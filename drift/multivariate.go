package drift

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Multivariate drift, after NannyML's data reconstruction with PCA: the
// reference's numerical features, standardised, are compressed onto the
// principal axes that explain a share of their variance and expanded
// back; a row's reconstruction error is the distance between it and its
// reconstruction. The axes encode how the features move together, so a
// window whose correlations changed reconstructs worse — even when every
// feature's own distribution, which the per-feature tests see, did not
// move at all.

// DefaultVarianceShare is the share of the reference's variance the kept
// principal axes explain (NannyML's default).
const DefaultVarianceShare = 0.65

// PCA is a profile's multivariate reference: the standardisation of its
// numerical features, the principal axes kept, and the distribution of the
// reference rows' reconstruction errors.
type PCA struct {
	// Features are the profile's numerical features, in its order.
	Features []string `json:"features"`
	// Mean and Scale standardise a row: z = (x − Mean)/Scale (Scale is the
	// population standard deviation, 1 for a constant feature); a missing
	// value is imputed with the mean (z = 0).
	Mean  []float64 `json:"mean"`
	Scale []float64 `json:"scale"`
	// Components are the kept principal axes, unit vectors, the first
	// explaining the most variance; Variance the share they explain.
	Components [][]float64 `json:"components"`
	Variance   float64     `json:"variance"`
	// ErrorMean and ErrorStd are the mean and population standard
	// deviation of the reference rows' reconstruction errors; Rows how
	// many rows they come from.
	ErrorMean float64 `json:"error_mean"`
	ErrorStd  float64 `json:"error_std"`
	Rows      int64   `json:"rows"`
}

func (c *PCA) validate(p *Profile) error {
	var nums []string
	for i := range p.Features {
		if p.Features[i].Kind == Numerical {
			nums = append(nums, p.Features[i].Name)
		}
	}
	d := len(c.Features)
	switch {
	case !slices.Equal(c.Features, nums) || d < 2:
		return fmt.Errorf("features %q, want the profile's numerical features %q (at least two)", c.Features, nums)
	case len(c.Mean) != d || len(c.Scale) != d:
		return fmt.Errorf("%d means and %d scales for %d features", len(c.Mean), len(c.Scale), d)
	case len(c.Components) < 1 || len(c.Components) > d:
		return fmt.Errorf("%d components for %d features", len(c.Components), d)
	case !(c.Variance > 0 && c.Variance <= 1+1e-9) || !finite(c.ErrorMean) || !(c.ErrorStd >= 0) || math.IsInf(c.ErrorStd, 0) || c.Rows < 2:
		return errors.New("variance share, error mean, error std or rows out of range")
	}
	for j := range d {
		if !finite(c.Mean[j]) || !(c.Scale[j] > 0) || math.IsInf(c.Scale[j], 0) {
			return fmt.Errorf("feature %q: mean %v, scale %v", c.Features[j], c.Mean[j], c.Scale[j])
		}
	}
	for i, v := range c.Components {
		if len(v) != d {
			return fmt.Errorf("component %d has %d values for %d features", i, len(v), d)
		}
		var n float64
		for _, x := range v {
			if !finite(x) {
				return fmt.Errorf("component %d is not finite", i)
			}
			n += x * x
		}
		if math.Abs(n-1) > 1e-6 {
			return fmt.Errorf("component %d is not a unit vector (norm² %v)", i, n)
		}
	}
	return nil
}

// fitPCA fits the multivariate reference to rows of the numerical
// features (NaN for a missing value): standardise each column as
// scikit-learn's StandardScaler, take the covariance's eigenvectors, keep
// the fewest whose explained share exceeds share (PCA(n_components=share)
// keeps them so), and measure every row's reconstruction error.
func fitPCA(names []string, rows [][]float64, share float64) (*PCA, error) {
	n, d := len(rows), len(names)
	if n < 2 || d < 2 {
		return nil, fmt.Errorf("multivariate reference: %d rows of %d numerical features, want at least 2 of 2", n, d)
	}
	c := &PCA{Features: slices.Clone(names), Mean: make([]float64, d), Scale: make([]float64, d), Rows: int64(n)}
	for j := range d {
		var sum float64
		var cnt int
		for _, r := range rows {
			if finite(r[j]) {
				sum += r[j]
				cnt++
			}
		}
		if cnt == 0 {
			return nil, fmt.Errorf("multivariate reference: feature %q has no finite value", names[j])
		}
		c.Mean[j] = sum / float64(cnt)
		var ss float64
		for _, r := range rows {
			if finite(r[j]) {
				ss += (r[j] - c.Mean[j]) * (r[j] - c.Mean[j])
			}
		}
		// The scaler's deviation is over the values it saw, the imputed
		// ones added at the mean: they add no spread but count in n.
		c.Scale[j] = math.Sqrt(ss / float64(n))
		if c.Scale[j] == 0 {
			c.Scale[j] = 1
		}
	}
	z := mat.NewDense(n, d, nil)
	for i, r := range rows {
		for j := range d {
			z.Set(i, j, c.standard(j, r[j]))
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(n), z.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return nil, errors.New("multivariate reference: the eigendecomposition did not converge")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	order := make([]int, d)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpDesc(vals[a], vals[b]) })
	var total float64
	for _, v := range vals {
		total += max(v, 0)
	}
	if total == 0 {
		return nil, errors.New("multivariate reference: every feature is constant")
	}
	var cum float64
	for _, i := range order {
		cum += max(vals[i], 0)
		axis := make([]float64, d)
		for j := range d {
			axis[j] = vecs.At(j, i)
		}
		c.Components = append(c.Components, axis)
		if cum/total > share || len(c.Components) == d {
			break
		}
	}
	c.Variance = min(cum/total, 1)
	errs := make([]float64, n)
	buf := make([]float64, d)
	for i, r := range rows {
		errs[i] = c.reconstructionError(r, buf)
	}
	var sum float64
	for _, e := range errs {
		sum += e
	}
	c.ErrorMean = sum / float64(n)
	var ss float64
	for _, e := range errs {
		ss += (e - c.ErrorMean) * (e - c.ErrorMean)
	}
	c.ErrorStd = math.Sqrt(ss / float64(n))
	return c, nil
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func (c *PCA) standard(j int, x float64) float64 {
	if !finite(x) {
		return 0 // imputed with the mean
	}
	return (x - c.Mean[j]) / c.Scale[j]
}

// reconstructionError is the Euclidean distance between a row, standardised,
// and its projection onto the kept axes: with z standardised and p the
// projection, |z − p|² = |z|² − Σ(axis·z)², the axes being orthonormal.
// buf holds the standardised row (len of the features).
func (c *PCA) reconstructionError(row, buf []float64) float64 {
	var zz float64
	for j, x := range row {
		z := c.standard(j, x)
		buf[j] = z
		zz += z * z
	}
	var pp float64
	for _, axis := range c.Components {
		var dot float64
		for j, a := range axis {
			dot += a * buf[j]
		}
		pp += dot * dot
	}
	return math.Sqrt(max(zz-pp, 0))
}

// MultivariateState is a window's part of the multivariate check: the
// count, sum and sum of squares of its rows' reconstruction errors.
// States of one profile merge by adding.
type MultivariateState struct {
	N     int64   `json:"n"`
	Sum   float64 `json:"sum"`
	SumSq float64 `json:"sum_sq"`
}

func (s *MultivariateState) add(e float64) {
	s.N++
	s.Sum += e
	s.SumSq += e * e
}

func (s *MultivariateState) merge(o *MultivariateState) {
	s.N += o.N
	s.Sum += o.Sum
	s.SumSq += o.SumSq
}

// MultivariateResult is a window's multivariate check: the mean
// reconstruction error of its rows against the band the reference's own
// spread allows for that many rows — its mean ± WithMultivariateBand
// standard errors (its per-row standard deviation over √rows), as
// NannyML draws the band from the reference's sampling error.
type MultivariateResult struct {
	Rows         int64   `json:"rows"`
	Error        float64 `json:"error"`
	RefError     float64 `json:"ref_error"`
	Lower        float64 `json:"lower"`
	Upper        float64 `json:"upper"`
	Drifted      bool    `json:"drifted"`
	Alarmed      bool    `json:"alarmed"`
	Insufficient bool    `json:"insufficient,omitempty"`
}

// evaluateMultivariate judges a window's reconstruction errors; clean says
// the mean lies within clearRatio of the band, far enough inside to count
// towards clearing an alarm.
func evaluateMultivariate(c *PCA, s *MultivariateState, cfg *evalConfig) (r *MultivariateResult, clean bool) {
	r = &MultivariateResult{Rows: s.N, RefError: c.ErrorMean, Lower: c.ErrorMean, Upper: c.ErrorMean}
	if s.N == 0 {
		r.Insufficient = true
		return r, false
	}
	r.Error = s.Sum / float64(s.N)
	half := cfg.mvBand * c.ErrorStd / math.Sqrt(float64(s.N))
	r.Lower, r.Upper = c.ErrorMean-half, c.ErrorMean+half
	if s.N < cfg.minSamples {
		r.Insufficient = true
		return r, false
	}
	dev := math.Abs(r.Error - c.ErrorMean)
	r.Drifted = dev > half
	return r, dev <= half*cfg.clearRatio
}

package drift

import (
	"slices"
	"strconv"
)

// Check names a data-quality check of a feature in a window. Unlike the
// drift statistics, the checks need no sample of any size to mean
// something and cost a compare or two per value, so they run on every
// feature of every window.
type Check string

// The checks, each a share of the window's values of the feature.
const (
	// CheckMissing: NaN, ±Inf or a value of the wrong type — the values
	// left out of the statistics — over all values; judged against the
	// reference's own missing share.
	CheckMissing Check = "missing"
	// CheckMismatched: values not of the feature's type (text that does
	// not parse as a number, for a numerical feature) over all values.
	CheckMismatched Check = "mismatched"
	// CheckOutOfRange: finite values below the reference's minimum or
	// above its maximum, over the finite values (numerical features).
	CheckOutOfRange Check = "out_of_range"
	// CheckUnseen: categories the reference never had, over the values
	// (categorical features whose profile knows all its categories: see
	// FeatureProfile.Rare).
	CheckUnseen Check = "unseen"
)

// Checks lists every check.
var Checks = []Check{CheckMissing, CheckMismatched, CheckOutOfRange, CheckUnseen}

// DefaultTolerance is how far above the reference's share a check's
// share may be before it breaches: one percentage point. A fresh sample of
// the reference's own distribution lands outside its range about 2/(n+1)
// of the time (n reference values), far below it.
const DefaultTolerance = 0.01

// CheckMultivariate names the multivariate drift check among a result's
// checks.
const CheckMultivariate = "multivariate"

// CheckRate is one check's share in a window.
type CheckRate struct {
	Check Check `json:"check"`
	// Rate is the window's share, RefRate the reference's, Threshold the
	// share above which the check breaches.
	Rate      float64 `json:"rate"`
	RefRate   float64 `json:"ref_rate"`
	Threshold float64 `json:"threshold"`
	Breach    bool    `json:"breach"`
}

// DataQuality is one feature's data quality in a window: the counts
// behind the checks and each check's share.
type DataQuality struct {
	// Values counts every value the window had for the feature, missing
	// or not; the rest split them by what was wrong.
	Values     int64 `json:"values"`
	NaN        int64 `json:"nan,omitempty"`
	Inf        int64 `json:"inf,omitempty"`
	Mismatched int64 `json:"mismatched,omitempty"`
	Below      int64 `json:"below,omitempty"`
	Above      int64 `json:"above,omitempty"`
	Unseen     int64 `json:"unseen,omitempty"`
	// Checks are the shares the feature's kind allows; a check is judged
	// (Breach) once the window has WithMinSamples values.
	Checks []CheckRate `json:"checks"`
}

// Rate returns a check's share.
func (d *DataQuality) Rate(c Check) (CheckRate, bool) {
	for _, r := range d.Checks {
		if r.Check == c {
			return r, true
		}
	}
	return CheckRate{}, false
}

func (c *evalConfig) tolerance(k Check) float64 {
	if t, ok := c.tolerances[k]; ok {
		return t
	}
	return DefaultTolerance
}

// dataQuality computes a feature's checks on one window.
func dataQuality(fp *FeatureProfile, st *FeatureState, cfg *evalConfig) *DataQuality {
	d := &DataQuality{Values: st.N + st.Missing, NaN: st.NaN, Inf: st.Inf, Mismatched: st.Mismatched,
		Below: st.Below, Above: st.Above, Unseen: st.Unseen}
	judged := d.Values >= cfg.minSamples
	add := func(k Check, n, of int64, ref float64) {
		r := CheckRate{Check: k, RefRate: ref, Threshold: ref + cfg.tolerance(k)}
		if of > 0 {
			r.Rate = float64(n) / float64(of)
		}
		r.Breach = judged && r.Rate > r.Threshold
		d.Checks = append(d.Checks, r)
	}
	refMissing := float64(fp.Missing) / float64(fp.Count+fp.Missing)
	add(CheckMissing, st.Missing, d.Values, refMissing)
	if fp.Kind == Numerical {
		add(CheckMismatched, st.Mismatched, d.Values, 0)
		add(CheckOutOfRange, st.Below+st.Above, st.N, 0)
	} else if fp.Counts[len(fp.Categories)] == 0 || fp.Rare != nil {
		add(CheckUnseen, st.Unseen, st.N, 0)
	}
	return d
}

// checkName is a data-quality check's name among a result's checks:
// "<feature>: <check>".
func checkName(feature string, c Check) string { return feature + ": " + string(c) }

func (r CheckRate) reason(feature string) string {
	return checkName(feature, r.Check) + " " + pct(r.Rate) + " > " + pct(r.Threshold)
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'g', 3, 64) + "%" }

// WithTolerance sets how far above the reference's share a data-quality
// check's share may be before it breaches (default DefaultTolerance).
func WithTolerance(c Check, tolerance float64) Option {
	return optionFunc(func(cfg *config) { cfg.eval.tolerances[c] = tolerance })
}

// WithMultivariateBand sets the multivariate check's band: a window's mean
// reconstruction error drifts when it is more than k of the reference's
// standard errors (for that many rows) from the reference's mean (default
// DefaultMultivariateBand).
func WithMultivariateBand(k float64) Option {
	return optionFunc(func(cfg *config) { cfg.eval.mvBand = k })
}

// DefaultMultivariateBand: 3 standard errors, NannyML's sampling-error
// band.
const DefaultMultivariateBand = 3

func validChecks(m map[Check]float64) error {
	for c, t := range m {
		if !slices.Contains(Checks, c) {
			return invalid("tolerance for unknown check %q", c)
		}
		if !(t >= 0 && t < 1) {
			return invalid("tolerance %v for %s, want a share in [0, 1)", t, c)
		}
	}
	return nil
}

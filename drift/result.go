package drift

import (
	"strconv"
	"strings"
	"time"
)

// Statistic names a drift statistic. Its value is a distance (0 for equal
// distributions) or, for the two tests, the test statistic with a p-value.
type Statistic string

// The statistics; the package doc defines each.
const (
	KS            Statistic = "ks"             // two-sample Kolmogorov–Smirnov test
	ChiSquare     Statistic = "chi_square"     // Pearson's chi-square test on the 2×K table
	PSI           Statistic = "psi"            // population stability index
	JensenShannon Statistic = "jensen_shannon" // Jensen–Shannon distance, base 2
	Wasserstein   Statistic = "wasserstein"    // Wasserstein-1 over the reference's std
	Hellinger     Statistic = "hellinger"      // Hellinger distance
	LInf          Statistic = "linf"           // L-infinity distance of shares
)

// Statistics lists every statistic.
var Statistics = []Statistic{KS, ChiSquare, PSI, JensenShannon, Wasserstein, Hellinger, LInf}

// Test reports whether s is a hypothesis test, judged by its p-value; the
// others are distances judged by their value.
func (s Statistic) Test() bool { return s == KS || s == ChiSquare }

func (s Statistic) valid() bool {
	for _, v := range Statistics {
		if s == v {
			return true
		}
	}
	return false
}

// Value is one statistic of one feature in one window.
type Value struct {
	Statistic Statistic `json:"statistic"`
	// Value is the distance, or the test's statistic (KS D, chi-square).
	Value float64 `json:"value"`
	// PValue is a test's p-value, before any correction.
	PValue float64 `json:"p_value,omitempty"`
	// Bound is the most Value may differ from the same statistic computed
	// on the raw samples, when it was computed from histograms; 0 when
	// exact.
	Bound float64 `json:"bound,omitempty"`
}

// FeatureStatus is a feature's verdict in a window.
type FeatureStatus string

// The verdicts.
const (
	// StatusOK: no drift in this window (or not yet enough to raise).
	StatusOK FeatureStatus = "ok"
	// StatusDrift: drift in this window, not (yet) an alarm.
	StatusDrift FeatureStatus = "drift"
	// StatusAlarm: the feature's alarm is raised (see hysteresis).
	StatusAlarm FeatureStatus = "alarm"
	// StatusInsufficient: fewer values than the minimum sample size; no
	// verdict, and the alarm state does not change.
	StatusInsufficient FeatureStatus = "insufficient"
)

// Bin is one bar of a feature's chart: its share of the reference and of
// the window. Numerical bins span (Lo, Hi]; categorical ones have a Label.
type Bin struct {
	Label string  `json:"label,omitempty"`
	Lo    float64 `json:"lo,omitempty"`
	Hi    float64 `json:"hi,omitempty"`
	Ref   float64 `json:"ref"`
	Cur   float64 `json:"cur"`
}

// FeatureResult is one feature's statistics and verdict in a window.
type FeatureResult struct {
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	Discrete bool   `json:"discrete,omitempty"`
	// Count and Missing are the window's values; RefCount and RefMissing
	// the reference's. Means are of the numerical values.
	Count      int64   `json:"count"`
	Missing    int64   `json:"missing"`
	RefCount   int64   `json:"ref_count"`
	RefMissing int64   `json:"ref_missing"`
	Mean       float64 `json:"mean,omitempty"`
	RefMean    float64 `json:"ref_mean,omitempty"`
	// Exact says the raw samples were compared (KS and Wasserstein exact);
	// otherwise histograms were, within each Value's Bound.
	Exact      bool    `json:"exact"`
	Statistics []Value `json:"statistics,omitempty"`
	// Method is the statistic that decides; Score its value (a distance) or
	// p-value (a test), AdjustedP the p-value after the correction across
	// features, compared with Threshold.
	Method    Statistic     `json:"method,omitempty"`
	Score     float64       `json:"score"`
	AdjustedP float64       `json:"adjusted_p,omitempty"`
	Threshold float64       `json:"threshold"`
	Drifted   bool          `json:"drifted"`
	Alarmed   bool          `json:"alarmed"`
	Status    FeatureStatus `json:"status"`
	Bins      []Bin         `json:"bins,omitempty"`
	// Quality is the feature's data quality in the window.
	Quality *DataQuality `json:"quality,omitempty"`
}

// Value returns the named statistic.
func (f *FeatureResult) Value(s Statistic) (Value, bool) {
	for _, v := range f.Statistics {
		if v.Statistic == s {
			return v, true
		}
	}
	return Value{}, false
}

// Reason says in words why the feature drifted or is in alarm, or "".
func (f *FeatureResult) Reason() string {
	if !f.Drifted && !f.Alarmed {
		return ""
	}
	var what string
	switch {
	case f.Method.Test() && f.Drifted:
		what = "p=" + fmtG(f.AdjustedP) + " < " + fmtG(f.Threshold)
	case f.Method.Test():
		what = "p=" + fmtG(f.AdjustedP) + ", threshold " + fmtG(f.Threshold) + "; alarm held"
	case f.Drifted:
		what = fmtG(f.Score) + " ≥ " + fmtG(f.Threshold)
	default:
		what = fmtG(f.Score) + ", threshold " + fmtG(f.Threshold) + "; alarm held"
	}
	return f.Name + ": " + string(f.Method) + " " + what
}

func fmtG(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// Window identifies the traffic a result covers.
type Window struct {
	// Index counts the windows evaluated for this model version, from 1.
	Index int64     `json:"index"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Rows  int64     `json:"rows"`
}

// Result is the evaluation of one window of one model version.
type Result struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Profile is the reference's Fingerprint.
	Profile    string          `json:"profile"`
	Window     Window          `json:"window"`
	Correction Correction      `json:"correction"`
	Features   []FeatureResult `json:"features"`
	// Drifted lists the features that drifted in this window, Alarmed
	// those whose alarm is raised after it.
	Drifted []string `json:"drifted,omitempty"`
	Alarmed []string `json:"alarmed,omitempty"`
	// Multivariate is the multivariate check, when the profile has a
	// multivariate reference.
	Multivariate *MultivariateResult `json:"multivariate,omitempty"`
	// Checks lists the other checks in alarm after this window: each
	// data-quality check as "<feature>: <check>", and "multivariate".
	Checks []string `json:"checks,omitempty"`
	// checkReasons say why each of Checks is in alarm.
	checkReasons []string
}

// Feature returns the named feature's result.
func (r *Result) Feature(name string) (*FeatureResult, bool) {
	for i := range r.Features {
		if r.Features[i].Name == name {
			return &r.Features[i], true
		}
	}
	return nil, false
}

// Reason says in words which features and checks alarm and why.
func (r *Result) Reason() string {
	var parts []string
	for i := range r.Features {
		if f := &r.Features[i]; f.Alarmed {
			parts = append(parts, f.Reason())
		}
	}
	return strings.Join(append(parts, r.checkReasons...), "; ")
}

package drift_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
)

// goldenMV is testdata/golden/multivariate.json (gen_multivariate.py,
// scikit-learn 1.2.1): a reference of four correlated features and a
// window whose correlations changed while every marginal did not.
type goldenMV struct {
	Features           []string
	Reference          [][]*float64
	Window             [][]float64
	Components         int
	Variance           float64
	Mean, Scale        []float64
	ReferenceErrors    []float64 `json:"reference_errors"`
	WindowErrors       []float64 `json:"window_errors"`
	ReferenceErrorMean float64   `json:"reference_error_mean"`
	ReferenceErrorStd  float64   `json:"reference_error_std"`
	WindowErrorMean    float64   `json:"window_error_mean"`
}

func readGoldenMV(t *testing.T) *goldenMV {
	t.Helper()
	b, err := os.ReadFile("testdata/golden/multivariate.json")
	require.NoError(t, err)
	var g goldenMV
	require.NoError(t, json.Unmarshal(b, &g))
	return &g
}

// mvProfile builds the golden reference's profile with a multivariate
// reference, the features read as the columns of input "x".
func mvProfile(t *testing.T, g *goldenMV) *drift.Profile {
	t.Helper()
	pb, err := drift.NewProfileBuilder("m", "1", drift.Columns("x", g.Features...), drift.WithMultivariate(0.65))
	require.NoError(t, err)
	for _, row := range g.Reference {
		for j, v := range row {
			if v == nil {
				require.NoError(t, pb.AddMissing(g.Features[j]))
			} else {
				require.NoError(t, pb.Add(g.Features[j], *v))
			}
		}
	}
	p, err := pb.Profile()
	require.NoError(t, err)
	return p
}

// The multivariate reference is scikit-learn's: the same means and scales
// (within 1e-12), the same number of principal axes and explained share,
// and every reference row's reconstruction error within 1e-9.
func TestGoldenMultivariate(t *testing.T) {
	g := readGoldenMV(t)
	c := mvProfile(t, g).Multivariate
	require.NotNil(t, c)
	assert.Equal(t, g.Features, c.Features)
	assert.Len(t, c.Components, g.Components)
	assert.InDelta(t, g.Variance, c.Variance, 1e-9)
	for j := range g.Mean {
		assert.InDelta(t, g.Mean[j], c.Mean[j], 1e-12)
		assert.InDelta(t, g.Scale[j], c.Scale[j], 1e-12)
	}
	assert.InDelta(t, g.ReferenceErrorMean, c.ErrorMean, 1e-9)
	assert.InDelta(t, g.ReferenceErrorStd, c.ErrorStd, 1e-9)
	var worst float64
	for i, row := range g.Reference {
		x := make([]float64, len(row))
		for j, v := range row {
			x[j] = math.NaN()
			if v != nil {
				x[j] = *v
			}
		}
		worst = max(worst, math.Abs(c.RowError(x)-g.ReferenceErrors[i]))
	}
	for i, row := range g.Window {
		worst = max(worst, math.Abs(c.RowError(row)-g.WindowErrors[i]))
	}
	assert.Less(t, worst, 1e-9, "every row's reconstruction error")
	t.Logf("largest difference of a row's reconstruction error from scikit-learn: %.3g over %d rows", worst, len(g.Reference)+len(g.Window))
	t.Logf("reference reconstruction error %.6f ± %.6f (scikit-learn %.6f ± %.6f)", c.ErrorMean, c.ErrorStd, g.ReferenceErrorMean, g.ReferenceErrorStd)
}

// A window whose features each keep their distribution but move together
// differently is caught by the multivariate check while every per-feature
// test passes: the case the check exists for. The window's mean
// reconstruction error is scikit-learn's within 1e-9.
func TestMultivariateCatchesWhatMarginalsMiss(t *testing.T) {
	g := readGoldenMV(t)
	prof := mvProfile(t, g)
	var alerts []drift.Alert
	m := newMonitor(t, drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(len(g.Window), 0)),
		drift.WithHysteresis(1, 1, drift.DefaultClearRatio), drift.WithAlertFunc(func(a drift.Alert) { alerts = append(alerts, a) }))
	p := m.Middleware()(echo)
	for lo := 0; lo < len(g.Window); lo += 50 {
		rows := g.Window[lo:min(lo+50, len(g.Window))]
		x := make([]float64, 0, len(rows)*4)
		for _, r := range rows {
			x = append(x, r...)
		}
		xt, err := serving.NewTensor("x", []int64{int64(len(rows)), 4}, x)
		require.NoError(t, err)
		_, err = p.Predict(context.Background(), &serving.Request{Model: "m", Version: "1", Inputs: []serving.Tensor{xt}})
		require.NoError(t, err)
	}
	flush(t, m)
	rs := m.Results("m", "1")
	require.Len(t, rs, 1)
	r := rs[0]
	for _, f := range r.Features {
		assert.False(t, f.Drifted, "feature %s: %s %v (threshold %v): the marginals did not move", f.Name, f.Method, f.Score, f.Threshold)
		assert.Equal(t, drift.StatusOK, f.Status, f.Name)
		t.Logf("%s: %s p=%.3g (adjusted %.3g)", f.Name, f.Method, f.Score, f.AdjustedP)
	}
	mv := r.Multivariate
	require.NotNil(t, mv)
	assert.InDelta(t, g.WindowErrorMean, mv.Error, 1e-9)
	assert.True(t, mv.Drifted)
	assert.True(t, mv.Alarmed)
	assert.Equal(t, []string{drift.CheckMultivariate}, r.Checks)
	assert.Empty(t, r.Alarmed, "no feature alarm")
	t.Logf("multivariate: reconstruction error %.4f, band [%.4f, %.4f] over %d rows", mv.Error, mv.Lower, mv.Upper, mv.Rows)
	st := m.Status("m", "1")
	require.ErrorIs(t, st.Err(), drift.ErrDrift)
	require.Len(t, alerts, 1)
	assert.Equal(t, []string{drift.CheckMultivariate}, alerts[0].CheckRaised)
	assert.Contains(t, alerts[0].Reason, "multivariate: reconstruction error")
	assert.False(t, math.IsNaN(mv.Upper))
}

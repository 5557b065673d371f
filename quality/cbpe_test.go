package quality_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
)

// world generates a binary task whose truth is known: features x0 ~
// N(mu, sd0), x1 ~ N(0, sd1); the true P(y=1|x) = σ(z), z = 1.5·x0 − x1 −
// 0.5; the model scores σ(2.5·z + 0.3), a monotone but overconfident and
// shifted function of the truth, which a calibration must undo. A
// covariate shift moves mu, sd0 or sd1 and leaves P(y|x) alone; a concept
// shift replaces the truth with σ(0.4·z + 0.4).
type world struct{ r *rand.Rand }

type regime struct {
	mu, sd0, sd1 float64
	concept      bool
}

var base = regime{0, 1, 1, false}

func newWorld(seed uint64) *world { return &world{rand.New(rand.NewPCG(seed, 99))} }

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func (w *world) draw(g regime, n int) (scores, labels []float64) {
	for range n {
		x0 := g.mu + g.sd0*w.r.NormFloat64()
		x1 := g.sd1 * w.r.NormFloat64()
		z := 1.5*x0 - x1 - 0.5
		p := sigmoid(z)
		if g.concept {
			p = sigmoid(0.4*z + 0.4)
		}
		scores = append(scores, sigmoid(2.5*z+0.3))
		labels = append(labels, b2f(w.r.Float64() < p))
	}
	return scores, labels
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// reference fits a reference on n rows of the base regime (held out from
// the monitored traffic: another seed).
func reference(t testing.TB, n int, opts ...quality.ReferenceOption) *quality.Reference {
	t.Helper()
	b, err := quality.NewReferenceBuilder("m", "1", quality.BinaryTask("score"), opts...)
	require.NoError(t, err)
	s, y := newWorld(1).draw(base, n)
	for i := range s {
		require.NoError(t, b.Add([]float64{s[i]}, y[i]))
	}
	ref, err := b.Reference()
	require.NoError(t, err)
	return ref
}

var estimatedMetrics = []quality.Metric{quality.Accuracy, quality.Precision, quality.Recall, quality.F1, quality.AUC, quality.LogLoss, quality.Brier}

// Under covariate shift (the inputs move, P(y|x) does not), CBPE's
// estimate tracks the realized metric within its band: for each of eight
// windows of 2000 predictions whose inputs move back and forth across the
// decision boundary, and each estimated metric, the realized value (all
// predictions labelled) lies within the estimate's band of 3 standard
// errors; the metrics really move, and no window is flagged divergent.
func TestCBPETracksCovariateShift(t *testing.T) {
	ref := reference(t, 20000)
	require.Equal(t, quality.Isotonic, ref.Calibrators[0].Method, "the overconfident scores need calibrating; Auto should see it")
	const n = 2000
	m := newMonitor(t, quality.WithReference(ref), quality.WithWindow(quality.CountWindow(n)),
		quality.WithQueue(1<<15), quality.WithDetectors())
	p := m.Middleware()(echo)
	w := newWorld(2)
	regimes := []regime{base, {0.6, 1, 1, false}, {1.2, 1, 1, false}, {-0.6, 1, 1, false},
		{-1.2, 1, 1, false}, {0.33, 0.4, 0.4, false}, {1.8, 1, 1, false}, {0, 2, 0.5, false}}
	for i, g := range regimes {
		s, y := w.draw(g, n)
		prefix := fmt.Sprintf("w%d-", i)
		feed(t, p, "1", prefix, 1, s)
		labelAll(t, m, prefix, y)
	}
	require.NoError(t, m.Flush(context.Background()))
	rs := m.Results("m", "1")
	require.Len(t, rs, len(regimes))
	slices.Reverse(rs)

	var within, total int
	realizedAcc := make([]float64, len(rs))
	var gap float64
	for i, r := range rs {
		require.True(t, r.Settled)
		for _, metric := range estimatedMetrics {
			mr, ok := r.Metric(metric)
			require.True(t, ok)
			require.NotNil(t, mr.Estimated, "%s estimated", metric)
			require.NotNil(t, mr.Realized, "%s realized", metric)
			e, real := mr.Estimated, *mr.Realized
			in := real >= e.Lower && real <= e.Upper
			total++
			if in {
				within++
			}
			assert.False(t, mr.Divergent, "window %d %s: realized %.4f, estimate %.4f [%.4f, %.4f]", i, metric, real, e.Value, e.Lower, e.Upper)
			t.Logf("window %d %-9s estimated %.4f [%.4f, %.4f] realized %.4f %s", i, metric, e.Value, e.Lower, e.Upper, real, map[bool]string{true: "", false: "OUTSIDE"}[in])
			if metric == quality.Accuracy {
				realizedAcc[i] = real
				gap = max(gap, math.Abs(real-e.Value))
			}
		}
	}
	t.Logf("%d of %d (window, metric) pairs within the band", within, total)
	assert.GreaterOrEqual(t, float64(within), 0.95*float64(total), "the band covers the realized metrics")
	spread := slices.Max(realizedAcc) - slices.Min(realizedAcc)
	assert.Greater(t, spread, 0.15, "the shifts move accuracy: %v", realizedAcc)
	assert.Less(t, gap, spread/5, "the estimate follows accuracy closely (largest gap %.4f, spread %.4f)", gap, spread)
	st := m.Status("m", "1")
	assert.NotContains(t, st.Alarms, "divergence")
}

// A concept shift (P(y|x) changes, the inputs do not) is invisible to the
// estimate: while the labels are out, no window breaches and no alarm is
// raised. Once the labels arrive, the realized metrics fall below their
// bounds, disagree with the estimate (divergence), and after two such
// windows the alarms are raised.
func TestConceptShiftFlaggedOnlyWithLabels(t *testing.T) {
	ref := reference(t, 20000)
	const n = 1000
	var alerts []quality.Alert
	m := newMonitor(t, quality.WithReference(ref), quality.WithWindow(quality.CountWindow(n)),
		quality.WithQueue(1<<15), quality.WithDetectors(), quality.WithAlertFunc(func(a quality.Alert) { alerts = append(alerts, a) }))
	p := m.Middleware()(echo)
	w := newWorld(3)
	var labels [][]float64
	for i := range 3 {
		s, y := w.draw(regime{0, 1, 1, true}, n)
		feed(t, p, "1", fmt.Sprintf("c%d-", i), 1, s)
		labels = append(labels, y)
	}
	require.NoError(t, m.Flush(context.Background()))
	st := m.Status("m", "1")
	assert.False(t, st.Alarmed, "no labels yet: %s", st.Reason)
	for _, r := range m.Results("m", "1") {
		for _, mr := range r.Metrics {
			assert.False(t, mr.EstimatedBreach, "window %d: estimated %s breached", r.Window.Index, mr.Metric)
			assert.Nil(t, mr.Realized)
		}
	}
	require.Empty(t, alerts)

	for i, y := range labels {
		labelAll(t, m, fmt.Sprintf("c%d-", i), y)
	}
	require.NoError(t, m.Flush(context.Background()))
	st = m.Status("m", "1")
	require.True(t, st.Alarmed)
	assert.Contains(t, st.Alarms, "realized accuracy")
	assert.Contains(t, st.Alarms, "divergence")
	assert.NotContains(t, st.Alarms, "estimated accuracy")
	require.NotEmpty(t, alerts)
	assert.Equal(t, quality.AlertRaised, alerts[0].Kind)
	require.ErrorIs(t, st.Err(), quality.ErrDegraded)
	t.Logf("after the labels: %v", st.Err())
	r := m.Results("m", "1")[0]
	acc, _ := r.Metric(quality.Accuracy)
	t.Logf("accuracy: reference %.4f, estimated %.4f, realized %.4f (bound %.4f)", *acc.Reference, acc.Estimated.Value, *acc.Realized, *acc.RealizedBound)
}

// A covariate shift that does hurt (the inputs crowd the decision
// boundary) is caught by the estimate alone, before any label: the
// estimated accuracy falls below its bound, and two windows raise the
// alarm. The labels then confirm it without divergence.
func TestCovariateShiftHurtsCaughtWithoutLabels(t *testing.T) {
	ref := reference(t, 20000)
	const n = 1000
	m := newMonitor(t, quality.WithReference(ref), quality.WithWindow(quality.CountWindow(n)),
		quality.WithQueue(1<<15), quality.WithDetectors())
	p := m.Middleware()(echo)
	w := newWorld(4)
	var labels [][]float64
	for i := range 2 {
		s, y := w.draw(regime{0.33, 0.3, 0.3, false}, n)
		feed(t, p, "1", fmt.Sprintf("h%d-", i), 1, s)
		labels = append(labels, y)
	}
	require.NoError(t, m.Flush(context.Background()))
	st := m.Status("m", "1")
	require.True(t, st.Alarmed, "the estimate alone raises the alarm")
	assert.Contains(t, st.Alarms, "estimated accuracy")
	t.Logf("before any label: %v", st.Err())
	for i, y := range labels {
		labelAll(t, m, fmt.Sprintf("h%d-", i), y)
	}
	require.NoError(t, m.Flush(context.Background()))
	st = m.Status("m", "1")
	assert.Contains(t, st.Alarms, "realized accuracy")
	assert.NotContains(t, st.Alarms, "divergence")
}

// Multiclass CBPE: a three-class model whose scores are the true class
// probabilities made overconfident (a softmax at twice the temperature's
// inverse), calibrated one class against the rest and renormalised. Under
// a covariate shift of the inputs, the estimated accuracy and macro
// metrics track the realized ones within their bands.
func TestCBPEMulticlass(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	w := [3][2]float64{{1.5, 0}, {-1, 1.2}, {-0.5, -1.2}}
	draw := func(mu float64, n int) (scores, labels []float64) {
		for range n {
			x := [2]float64{mu + r.NormFloat64(), r.NormFloat64()}
			var z, zs [3]float64
			var sum, sums float64
			for k := range 3 {
				z[k] = math.Exp(w[k][0]*x[0] + w[k][1]*x[1])
				zs[k] = math.Exp(2 * (w[k][0]*x[0] + w[k][1]*x[1]))
				sum += z[k]
				sums += zs[k]
			}
			u, y := r.Float64(), 2
			for k, acc := 0, 0.0; k < 3; k++ {
				if acc += z[k] / sum; u < acc {
					y = k
					break
				}
			}
			for k := range 3 {
				scores = append(scores, zs[k]/sums)
			}
			labels = append(labels, float64(y))
		}
		return scores, labels
	}
	task := quality.MulticlassTask("score", "a", "b", "c")
	rb, err := quality.NewReferenceBuilder("m", "1", task)
	require.NoError(t, err)
	s, y := draw(0, 20000)
	for i := range y {
		require.NoError(t, rb.Add(s[3*i:3*i+3], y[i]))
	}
	ref, err := rb.Reference()
	require.NoError(t, err)
	const n = 2000
	m := newMonitor(t, quality.WithReference(ref), quality.WithWindow(quality.CountWindow(n)), quality.WithQueue(1<<15), quality.WithDetectors())
	p := m.Middleware()(echo)
	for i, mu := range []float64{0, 1, -1, 2} {
		s, y := draw(mu, n)
		prefix := fmt.Sprintf("w%d-", i)
		feed(t, p, "1", prefix, 3, s)
		labelAll(t, m, prefix, y)
	}
	require.NoError(t, m.Flush(context.Background()))
	var within, total int
	for _, r := range m.Results("m", "1") {
		for _, metric := range []quality.Metric{quality.Accuracy, quality.Precision, quality.Recall, quality.F1, quality.AUC, quality.LogLoss} {
			mr, ok := r.Metric(metric)
			require.True(t, ok)
			require.NotNil(t, mr.Estimated, metric)
			require.NotNil(t, mr.Realized, metric)
			total++
			if *mr.Realized >= mr.Estimated.Lower && *mr.Realized <= mr.Estimated.Upper {
				within++
			}
			t.Logf("window %d %-9s estimated %.4f [%.4f, %.4f] realized %.4f", r.Window.Index, metric, mr.Estimated.Value, mr.Estimated.Lower, mr.Estimated.Upper, *mr.Realized)
		}
	}
	t.Logf("%d of %d within the band", within, total)
	assert.GreaterOrEqual(t, float64(within), 0.95*float64(total))
}

package quality_test

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

var binary = quality.WithTask("m", quality.BinaryTask("score"))

// The memory cap forgets the oldest predictions and counts them: a label
// for one of them finds nothing, labels for the rest join.
func TestMemoryCapDropsOldest(t *testing.T) {
	m := newMonitor(t, binary, quality.WithMemory(100, time.Hour), quality.WithQueue(1000), quality.WithDetectors())
	p := m.Middleware()(echo)
	scores := make([]float64, 150)
	for i := range scores {
		scores[i] = float64(i%10) / 10
	}
	feed(t, p, "1", "r", 1, scores)
	res := labelAll(t, m, "r", make([]float64, 150))
	assert.Equal(t, quality.LabelResult{Matched: 100, Unmatched: 50}, res)
	st := m.Stats()
	assert.Equal(t, int64(50), st.Evicted)
	assert.Equal(t, int64(150), st.Predictions)
	assert.Equal(t, int64(50), st.Unmatched)
	assert.Equal(t, uint64(100), m.Remembered("m"))
}

// Predictions older than the maximum age are forgotten.
func TestMaxAgeExpires(t *testing.T) {
	clk := quality.NewFakeClock(t0)
	m := newMonitor(t, binary, quality.WithMemory(1000, time.Minute), quality.WithDetectors(), quality.WithClock(clk))
	p := m.Middleware()(echo)
	feed(t, p, "1", "old", 1, []float64{0.9, 0.1})
	require.NoError(t, m.Flush(context.Background())) // taken in, and stamped, at t0
	clk.Set(t0.Add(2 * time.Minute))
	feed(t, p, "1", "new", 1, []float64{0.8})
	assert.Equal(t, quality.LabelResult{Unmatched: 2}, labelAll(t, m, "old", []float64{1, 0}))
	assert.Equal(t, quality.LabelResult{Matched: 1}, labelAll(t, m, "new", []float64{1}))
	assert.Equal(t, int64(2), m.Stats().Expired)
}

// Row r of a request of several rows is "<id>/<r>".
func TestMultiRowIDs(t *testing.T) {
	m := newMonitor(t, binary, quality.WithDetectors())
	p := m.Middleware()(echo)
	predict(t, p, "1", "batch-7", 1, []float64{0.2, 0.7, 0.9})
	res, err := m.Label(context.Background(), "m", []quality.Label{{ID: "batch-7/0", Value: 0}, {ID: "batch-7/2", Value: 1}, {ID: "batch-7", Value: 1}})
	require.NoError(t, err)
	assert.Equal(t, quality.LabelResult{Matched: 2, Unmatched: 1}, res)
}

// A label that does not fit the task fails the whole call, naming it, and
// takes none: the corrected batch can be sent again.
func TestBadLabelsTakeNothing(t *testing.T) {
	m := newMonitor(t, binary, quality.WithDetectors())
	p := m.Middleware()(echo)
	feed(t, p, "1", "r", 1, []float64{0.2, 0.7})
	for name, ls := range map[string][]quality.Label{
		"binary label 2": {{ID: "r0", Value: 0}, {ID: "r1", Value: 2}},
		"NaN":            {{ID: "r0", Value: math.NaN()}},
		"empty id":       {{ID: "", Value: 1}},
	} {
		_, err := m.Label(context.Background(), "m", ls)
		require.Error(t, err, name)
		assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), name)
	}
	_, err := m.Label(context.Background(), "other", []quality.Label{{ID: "r0", Value: 1}})
	assert.Equal(t, serving.NotFound, serving.CodeOf(err))
	assert.Zero(t, m.Stats().Labels)
	assert.Equal(t, quality.LabelResult{Matched: 2}, labelAll(t, m, "r", []float64{0, 1}))
}

// Time windows close at their end; a window's realized metrics become
// final once its labels are due (WithLabelDelay), and until then show the
// labels so far.
func TestTimeWindowsSettleAfterLabelDelay(t *testing.T) {
	clk := quality.NewFakeClock(t0)
	m := newMonitor(t, binary, quality.WithWindow(quality.TimeWindow(time.Minute)), quality.WithLabelDelay(10*time.Minute),
		quality.WithMinSamples(1), quality.WithDetectors(), quality.WithClock(clk))
	p := m.Middleware()(echo)
	feed(t, p, "1", "a", 1, []float64{0.9, 0.8, 0.2, 0.1})
	require.NoError(t, m.Flush(context.Background())) // taken in, and stamped, at t0
	clk.Advance(time.Minute)                          // the window ends
	require.NoError(t, m.Flush(context.Background()))
	rs := m.Results("m", "1")
	require.Len(t, rs, 1)
	assert.Equal(t, t0.Add(time.Minute), rs[0].Window.End)
	assert.False(t, rs[0].Settled)

	clk.Set(t0.Add(2 * time.Minute))
	res, err := m.Label(context.Background(), "m", []quality.Label{{ID: "a0", Value: 1}, {ID: "a2", Value: 1}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), res.Matched)
	require.NoError(t, m.Flush(context.Background()))
	r := m.Results("m", "1")[0]
	assert.False(t, r.Settled)
	assert.Equal(t, int64(2), r.Window.Labelled)
	acc, _ := r.Metric(quality.Accuracy)
	require.NotNil(t, acc.Realized)
	assert.Equal(t, 0.5, *acc.Realized, "a0 right, a2 wrong")
	require.NotNil(t, r.Delay)
	assert.Equal(t, 120.0, r.Delay.P50, "predicted at t0, labelled at t0+2m")

	clk.Advance(10 * time.Minute)
	require.NoError(t, m.Flush(context.Background()))
	assert.True(t, m.Results("m", "1")[0].Settled)
}

// NaN scores are counted, left out of the metrics, and raise the
// "invalid" alarm.
func TestInvalidScores(t *testing.T) {
	m := newMonitor(t, binary, quality.WithWindow(quality.CountWindow(4)), quality.WithDetectors())
	p := m.Middleware()(echo)
	for i := range 2 {
		feed(t, p, "1", fmt.Sprint("w", i, "-"), 1, []float64{0.9, math.NaN(), 0.3, math.Inf(1)})
	}
	require.NoError(t, m.Flush(context.Background()))
	rs := m.Results("m", "1")
	require.Len(t, rs, 2)
	assert.Equal(t, int64(2), rs[0].Window.Invalid)
	assert.Equal(t, int64(2), rs[0].Window.Identified)
	st := m.Status("m", "1")
	assert.Equal(t, []string{"invalid"}, st.Alarms)
	assert.Contains(t, st.Reason, "2 of 4 scores NaN or infinite")
}

// The change detectors see the error rate rise from 10% to 50% within a
// few hundred labels, raise an alarm with the finding, and clear it after
// the hold.
func TestChangeDetectors(t *testing.T) {
	for _, d := range []quality.Detector{quality.PageHinkley, quality.ADWIN} {
		t.Run(string(d), func(t *testing.T) {
			var alerts []quality.Alert
			m := newMonitor(t, binary, quality.WithDetectors(d), quality.WithChangeHold(500), quality.WithQueue(1<<14),
				quality.WithAlertFunc(func(a quality.Alert) { alerts = append(alerts, a) }))
			p := m.Middleware()(echo)
			w := newWorld(5)
			scores := make([]float64, 4000)
			labels := make([]float64, 4000)
			for i := range scores {
				scores[i] = 0.9 // always predicts positive
				wrong := 0.1
				if i >= 1000 && i < 2000 {
					wrong = 0.5
				}
				labels[i] = b2f(w.r.Float64() >= wrong)
			}
			feed(t, p, "1", "r", 1, scores)
			for lo := 0; lo < 4000; lo += 100 {
				ls := make([]quality.Label, 100)
				for i := range ls {
					ls[i] = quality.Label{ID: fmt.Sprint("r", lo+i), Value: labels[lo+i]}
				}
				_, err := m.Label(context.Background(), "m", ls)
				require.NoError(t, err)
			}
			require.NotEmpty(t, alerts)
			a := alerts[0]
			require.NotNil(t, a.Change, "the first alert is the detection")
			assert.Equal(t, []string{"change " + string(d)}, a.Raised)
			assert.Greater(t, a.Change.Labels, int64(1000))
			assert.Less(t, a.Change.Labels, int64(1400), "found within 400 labels of the rise")
			assert.Greater(t, a.Change.After, a.Change.Before)
			t.Logf("%s: rise found after %d labels: %.3f → %.3f", d, a.Change.Labels, a.Change.Before, a.Change.After)
			last := alerts[len(alerts)-1]
			assert.Equal(t, quality.AlertCleared, last.Kind, "cleared once the hold passed without a rise")
			assert.False(t, m.Status("m", "1").Alarmed)
			assert.NotEmpty(t, m.Status("m", "1").Changes)
		})
	}
}

// Two versions that answered the same request ids (a shadow's mirror)
// compare on exactly those rows.
func TestComparePaired(t *testing.T) {
	m := newMonitor(t, binary, quality.WithDetectors(), quality.WithQueue(1<<12))
	p := m.Middleware()(echo)
	w := newWorld(6)
	s, y := w.draw(base, 600)
	noisy := make([]float64, len(s))
	for i, v := range s {
		noisy[i] = math.Abs(v - 0.5*w.r.Float64())
	}
	feed(t, p, "1", "r", 1, s)
	feed(t, p, "2", "r", 1, noisy[:500]) // the candidate saw the first 500 only
	labelAll(t, m, "r", y)
	ctx := context.Background()
	c, err := m.Compare(ctx, "m", "1", "2", quality.AUC, quality.Paired, t0.Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(500), c.N)
	assert.Greater(t, c.Baseline, c.Candidate)
	r, err := m.Compare(ctx, "m", "1", "2", quality.AUC, quality.Realized, t0.Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(500), r.N, "the fewer of 600 and 500")
	_, err = m.Compare(ctx, "m", "1", "2", quality.MAE, quality.Paired, t0)
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err))
	_, err = m.Compare(ctx, "m", "1", "2", quality.AUC, quality.Estimated, t0)
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err), "no references")
	none, err := m.Compare(ctx, "m", "1", "3", quality.AUC, quality.Paired, t0.Add(-time.Hour))
	require.NoError(t, err)
	assert.Zero(t, none.N)
	f := m.CompareFunc(quality.AUC, quality.Paired)
	b, cand, n, err := f(ctx, "m", "1", "2", t0.Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, [3]float64{c.Baseline, c.Candidate, 500}, [3]float64{b, cand, float64(n)})
}

// Many callers predicting and labelling at once (run under -race).
func TestConcurrentUse(t *testing.T) {
	m := newMonitor(t, binary, quality.WithWindow(quality.CountWindow(50)), quality.WithMinSamples(10))
	p := m.Middleware()(echo)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint("g", g, "-", i)
				predict(t, p, "1", id, 1, []float64{float64(i%10) / 10})
				if i%5 == 0 {
					_, err := m.Label(context.Background(), "m", []quality.Label{{ID: id, Value: float64(i % 2)}})
					assert.NoError(t, err)
				}
				_ = m.Status("m", "1")
				_ = m.Results("m", "1")
			}
		})
	}
	wg.Wait()
	require.NoError(t, m.Flush(context.Background()))
	st := m.Stats()
	assert.Equal(t, st.Predictions+st.Dropped, int64(1600))
}

// Each remembered prediction costs what WithMemory states: 48 bytes of
// slot and 8 per score in the ring, and the id index's share (Go's map:
// 40 to 70 bytes an entry as it fills and doubles); measured here on
// 50,000 binary predictions, at most 128 bytes each in all.
func TestBytesPerPrediction(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~6 MB")
	}
	const n = 57_344 // 65,536 with the warm-up: the index table just full
	m := newMonitor(t, binary, quality.WithDetectors(), quality.WithMemory(n+8192, time.Hour), quality.WithQueue(1<<14),
		quality.WithWindow(quality.CountWindow(n+1)))
	p := m.Middleware()(echo)
	var before, after runtime.MemStats
	x, err := serving.NewTensor("x", []int64{1}, []float64{0.5})
	require.NoError(t, err)
	ids := make([]string, n+8192)
	for i := range ids {
		ids[i] = fmt.Sprint("req-", i)
	}
	// Warm up: the hand-off buffers reach their working size (a fixed
	// cost, not one per prediction).
	for i := n; i < n+8192; i++ {
		_, err := p.Predict(context.Background(), &serving.Request{ID: ids[i], Model: "m", Version: "1", Inputs: []serving.Tensor{x}})
		require.NoError(t, err)
	}
	require.NoError(t, m.Flush(context.Background()))
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		_, err := p.Predict(context.Background(), &serving.Request{ID: ids[i], Model: "m", Version: "1", Inputs: []serving.Tensor{x}})
		require.NoError(t, err)
		if i%8192 == 0 {
			require.NoError(t, m.Flush(context.Background()))
		}
	}
	require.NoError(t, m.Flush(context.Background()))
	require.Zero(t, m.Stats().Dropped)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ids)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes per remembered prediction (ring %d + score 8, the rest the id index)", per, quality.SlotBytes)
	assert.Less(t, per, 128.0)
	assert.Equal(t, uint64(n+8192), m.Remembered("m"))
}

// A closed window whose predictions start to be forgotten (the memory cap
// here) is settled first, with every label it got.
func TestForgottenWindowSettlesFirst(t *testing.T) {
	m := newMonitor(t, binary, quality.WithWindow(quality.CountWindow(10)), quality.WithMemory(20, time.Hour),
		quality.WithMinSamples(1), quality.WithDetectors())
	p := m.Middleware()(echo)
	feed(t, p, "1", "a", 1, []float64{0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1})
	labelAll(t, m, "a", []float64{1, 1, 1, 1, 0, 0, 0, 0, 0, 0}[:9]) // one label never comes
	require.NoError(t, m.Flush(context.Background()))
	assert.False(t, m.Results("m", "1")[0].Settled)
	feed(t, p, "1", "b", 1, make([]float64, 11)) // evicts a0
	require.NoError(t, m.Flush(context.Background()))
	r := m.Results("m", "1")[1]
	require.Equal(t, int64(1), r.Window.Index)
	assert.True(t, r.Settled)
	acc, _ := r.Metric(quality.Accuracy)
	require.NotNil(t, acc.Realized)
	assert.InDelta(t, 8.0/9, *acc.Realized, 1e-12, "all nine labels, a4 wrong")
}

// The rule on serving.Middleware: the observing layer owns the model it
// wraps and closes it; the Monitor, shared with another chain, stays open
// and keeps watching that chain: with no reference for the fake model it
// counts the answer as unwatched, which a closed Monitor would not.
func TestCloseClosesTheModelNotTheMonitor(t *testing.T) {
	m := newMonitor(t)
	servingtest.Ownership(t, m.Middleware(), func(t *testing.T, _ serving.Predictor) {
		assert.EqualValues(t, 1, m.Stats().Unwatched, "answers seen after the first chain closed")
	})
}

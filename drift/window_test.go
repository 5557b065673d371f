package drift_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving/servingtest"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSlidingCountWindow(t *testing.T) {
	m := newMonitor(t, drift.WithProfile(referenceProfile(t, 2000)),
		drift.WithWindow(drift.CountWindow(400, 100)))
	p := m.Middleware()(servingtest.Linear(2))
	serve(t, p, newGen(4), 1000, 30, 0) // batches straddle pane boundaries
	flush(t, m)
	res := m.Results("linear", "1")
	// Windows end every 100 rows once the first 400 are in: at 400..1000.
	require.Equal(t, 7, len(res))
	for i, r := range res {
		assert.Equal(t, int64(400), r.Window.Rows)
		assert.Equal(t, int64(7-i), r.Window.Index)
		a, _ := r.Feature("a")
		assert.Equal(t, int64(400), a.Count)
	}
}

func TestTimeWindows(t *testing.T) {
	clk := drift.NewFakeClock(t0)
	m := newMonitor(t, drift.WithProfile(referenceProfile(t, 2000)),
		drift.WithWindow(drift.TimeWindow(time.Minute, 0)), drift.WithClock(clk))
	p := m.Middleware()(servingtest.Linear(2))
	g := newGen(5)

	clk.Set(t0.Add(10 * time.Second))
	serve(t, p, g, 300, 50, 0)
	flush(t, m)
	assert.Empty(t, m.Results("linear", "1"), "the minute is not over")

	clk.Advance(50 * time.Second) // 1:00 closes [0:00, 1:00)
	flush(t, m)
	res := m.Results("linear", "1")
	require.Equal(t, 1, len(res))
	assert.Equal(t, int64(300), res[0].Window.Rows)
	assert.Equal(t, t0, res[0].Window.Start)
	assert.Equal(t, t0.Add(time.Minute), res[0].Window.End)

	// An idle hour evaluates nothing, and the next minute starts clean.
	clk.Advance(time.Hour)
	flush(t, m)
	assert.Len(t, m.Results("linear", "1"), 1)
	serve(t, p, g, 200, 50, 0)
	flush(t, m) // records are binned by when the worker takes them in
	clk.Advance(time.Minute)
	flush(t, m)
	res = m.Results("linear", "1")
	require.Equal(t, 2, len(res))
	assert.Equal(t, int64(200), res[0].Window.Rows)
	assert.Equal(t, t0.Add(61*time.Minute), res[0].Window.Start)
}

func TestSlidingTimeWindow(t *testing.T) {
	clk := drift.NewFakeClock(t0)
	m := newMonitor(t, drift.WithProfile(referenceProfile(t, 2000)),
		drift.WithWindow(drift.TimeWindow(3*time.Minute, time.Minute)), drift.WithClock(clk))
	p := m.Middleware()(servingtest.Linear(2))
	g := newGen(6)
	for minute := range 5 {
		serve(t, p, g, 100*(minute+1), 100, 0)
		flush(t, m)
		clk.Advance(time.Minute)
	}
	flush(t, m)
	res := m.Results("linear", "1")
	// Windows of three minutes end at 3, 4 and 5.
	require.Equal(t, 3, len(res))
	assert.Equal(t, int64(300+400+500), res[0].Window.Rows)
	assert.Equal(t, int64(100+200+300), res[2].Window.Rows)
	assert.Equal(t, t0.Add(2*time.Minute), res[0].Window.Start)
}

func TestWindowValidation(t *testing.T) {
	for _, w := range []drift.WindowSpec{
		drift.CountWindow(0, 0), drift.CountWindow(100, 30), drift.CountWindow(100, 200),
		drift.TimeWindow(time.Minute, 7*time.Second), drift.CountWindow(1000, 1),
		{},
	} {
		_, err := drift.NewMonitor(drift.WithWindow(w))
		assert.Error(t, err, "%v", w)
	}
}

func TestSnapshotOfSlidingWindow(t *testing.T) {
	m := newMonitor(t, drift.WithProfile(referenceProfile(t, 2000)),
		drift.WithWindow(drift.CountWindow(300, 100)))
	p := m.Middleware()(servingtest.Linear(2))
	serve(t, p, newGen(7), 450, 50, 0)
	snap, err := m.Snapshot(context.Background(), "linear", "1")
	require.NoError(t, err)
	// The window being filled: panes 200-300 and 300-400 stay in it, with
	// the 50 rows of the pane being filled.
	assert.Equal(t, int64(250), snap.Rows)
	assert.Equal(t, int64(250), snap.Features[0].N)
}

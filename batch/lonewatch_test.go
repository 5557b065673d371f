package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A lone caller of requests of two rows (or with parameters, or one in
// fastSample of one-row requests) runs them on the locked lone path, each
// with a run limit. The scheduler keeps the timer it set for one run's
// limit after that run ends, so later runs, whose limits come after it,
// are watched without waking the scheduler: no timer is made for them,
// where each run woke it before.
func TestLoneRunsAreWatchedWithoutWakingTheScheduler(t *testing.T) {
	clk := newFakeClock()
	const maxRun = 10 * time.Second
	b := mustNew(t, servingtest.Linear(1), loneOpts(clk, maxRun)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := clk.Now()
	if _, err := b.Predict(ctx, servingtest.Rows(1, 2, 0)); err != nil {
		t.Fatal(err)
	}
	clk.waitTimer(t, t0.Add(maxRun)) // kept though the run is over
	made := clk.timersMade()
	const runs = 100
	for i := range runs {
		clk.Advance(time.Millisecond)
		if _, err := b.Predict(ctx, servingtest.Rows(1, 2, float32(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := clk.timersMade() - made; n != 0 {
		t.Errorf("%d timers made for %d lone runs after the first, want 0", n, runs)
	}
	if s := b.Stats(); s.Direct != runs+1 || s.Ended != 0 || s.Batches != runs+1 {
		t.Errorf("Direct %d, Ended %d, Batches %d, want %d, 0, %d", s.Direct, s.Ended, s.Batches, runs+1, runs+1)
	}
}

// loneOpts make every lone request run on the locked lone path at once, so
// that the tests see every timer the scheduler sets: no gathering of
// company (adaptive mode's, cost.go), no max delay.
func loneOpts(clk *fakeClock, maxRun time.Duration) []batch.Option {
	return []batch.Option{batch.WithClock(clk), batch.WithMaxRunTime(maxRun), batch.WithAdaptive(false), batch.WithMaxDelay(0)}
}

// A lone run of the locked path that starts while the scheduler's kept
// timer is set still ends at its own limit: when the kept timer fires, the
// scheduler looks at the run and sets its timer for the run's limit; at
// that limit the run's ctx is cancelled, its caller gets DeadlineExceeded
// and the slot is free for the next request. (Requests of two rows: one of
// one row runs on the fast path, whose limit only gives the slot back to
// those who wait; fast_test.go.)
func TestLoneRunAfterKeptTimerEndsAtItsOwnLimit(t *testing.T) {
	clk := newFakeClock()
	const maxRun = 10 * time.Second
	g := newGate(1)
	b := mustNew(t, g.model, loneOpts(clk, maxRun)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := clk.Now()
	g.release(1)
	if _, err := b.Predict(ctx, servingtest.Rows(1, 2, 0)); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	clk.waitTimer(t, t0.Add(maxRun))

	clk.Advance(maxRun / 2)
	stuck := async(ctx, b, servingtest.Rows(1, 2, 1)) // limit t0 + 1.5 maxRun
	<-g.entered
	clk.Advance(maxRun / 2) // the kept timer fires
	clk.waitTimer(t, t0.Add(maxRun+maxRun/2))
	select {
	case r := <-stuck:
		t.Fatalf("run answered before its limit: %v", r.err)
	default:
	}
	clk.Advance(maxRun / 2)
	r := <-stuck
	if serving.CodeOf(r.err) != serving.DeadlineExceeded {
		t.Fatalf("stuck lone run: %v, want DeadlineExceeded", r.err)
	}
	if s := b.Stats(); s.Ended != 1 {
		t.Errorf("Ended %d, want 1", s.Ended)
	}
	g.release(1)
	if _, err := b.Predict(ctx, servingtest.Rows(1, 2, 2)); err != nil {
		t.Fatalf("request after the ended run: %v", err)
	}
}

// A lone caller under a ctx that can never end runs on the fast path, but
// for one request in 64, which takes the locked path to be timed. On its
// way it looks for a run alone without the lock (loose.go), which is
// closed while joining: that look must not wake the scheduler. Each wake
// makes the scheduler set its timer again (kept, see the test above), so
// the timers made count the wakes.
func TestSampledFastRunsDoNotWakeTheScheduler(t *testing.T) {
	clk := newFakeClock()
	b := mustNew(t, servingtest.Linear(1), batch.WithClock(clk))
	ctx := context.Background()
	for range 64 { // the first gather company until they have seen nobody come (cost.go)
		if _, err := b.Predict(ctx, servingtest.Rows(1, 1, 0)); err != nil {
			t.Fatal(err)
		}
	}
	made := clk.timersMade()
	const runs = 64 * 20
	for i := range runs {
		if _, err := b.Predict(ctx, servingtest.Rows(1, 1, float32(i))); err != nil {
			t.Fatal(err)
		}
	}
	// A wake-up the warm-up's runs asked for may still come (b.wake holds
	// one), and one may be going on: at most two timers, against one per
	// sampled run (20) when the look woke the scheduler.
	if n := clk.timersMade() - made; n > 2 {
		t.Errorf("%d timers made over %d requests of a lone caller (%d sampled), want at most 2", n, runs, runs/64)
	}
	if s := b.Stats(); s.Requests != runs+64 || s.Untimed == 0 || s.Joining != true {
		t.Errorf("Requests %d, Untimed %d, Joining %v: want %d, > 0, true", s.Requests, s.Untimed, s.Joining, runs+64)
	}
}

package batch

import (
	"runtime"
	"time"
)

// costModel is adaptive mode's measure of whether joining pays. Guarded by
// Batcher.mu.
//
// It keeps two running estimates, both of wall time per row:
// alone, of runs of one request (a lone request in its caller's
// goroutine, or a batch of one), and joined, of joined runs from the
// moment the runner takes the batch to the moment the last member has
// been handed its answer (joining, the run, splitting and waking the
// callers). Only runs that had the model to themselves count (nothing
// else ran while they did), so that a run slowed down by another running
// beside it, or by a hundred runs time-slicing two cores, is not mistaken
// for the model's cost. On a shared machine a run is also slowed now and
// then by other processes; that noise only ever adds time, so the
// estimates follow a sample below them four times as fast as one above
// (a low quantile, not the mean), and one stall does not flip the choice.
//
// Joined runs take the run slots (WithMaxInFlight, one by default), one
// at a time each, while runs alone may use every core Go runs on
// (GOMAXPROCS) at once. Joining pays when the slots running joined batches
// answer rows faster than the cores running them alone would:
//
//	joined × procs / slots < alone
//
// with a ±10% band so that noise does not flip the choice back and forth.
// Before both are measured, the batcher joins (the runs measure joined).
//
// While joining does not pay, no joined run measures it again: so after
// probeBase runs alone the batcher joins for two measured batches (a
// probe), and decides afresh. Each probe that confirms running alone
// doubles the wait for the next, up to probeMax runs, so a model that
// never pays to join spends a vanishing share of its runs finding out.
type costModel struct {
	alone, joined float64 // ns per row; 0: not measured yet
	joins         bool    // the current choice
	procs, slots  float64
	aloneRuns     int64 // alone-mode runs since the last probe
	probeEvery    int64
	probing       int // joined samples still wanted by the running probe; 0: none

	// gatherN is the mean number of requests a caller that gathered
	// company (Batcher.gather) ran, from a prior of gatherPrior so that
	// one gathering that found nobody does not stop them; gatherSkip
	// counts the lone runs since the last gathering.
	gatherN    float64
	gatherSkip int64
}

const (
	// Weights of a new sample below and above the estimate.
	costDown, costUp = 1.0 / 8, 1.0 / 32
	probeBase        = 1 << 10
	probeMax         = 1 << 16
	gatherProbe      = 64
	gatherPrior      = 2
	// minRunBudget is the least a joined run is allowed before it is
	// suspect (see limitLocked), whatever the measurements say: timers and
	// the scheduler cannot be trusted much below it on a busy machine.
	minRunBudget = time.Millisecond
)

func newCostModel(maxFlight int) costModel {
	c := costModel{joins: true, probeEvery: probeBase, slots: float64(maxFlight), gatherN: gatherPrior}
	c.readProcs()
	return c
}

// readProcs reads GOMAXPROCS (it takes the scheduler's lock: not per
// request).
func (c *costModel) readProcs() {
	c.procs = float64(runtime.GOMAXPROCS(0))
}

func estimate(est, sample float64) float64 {
	switch {
	case est == 0:
		return sample
	case sample < est:
		return est + costDown*(sample-est)
	}
	return est + costUp*(sample-est)
}

// ran records a run that had the model to itself: reqs requests, rows
// rows, d from start to hand-out.
func (c *costModel) ran(d time.Duration, rows int64, reqs int) {
	perRow := float64(d) / float64(max(rows, 1))
	if reqs == 1 {
		c.alone = estimate(c.alone, perRow)
	} else {
		c.joined = estimate(c.joined, perRow)
		if c.probing > 0 {
			c.probing--
		}
	}
	if c.probing == 0 {
		c.decide()
	}
}

func (c *costModel) decide() {
	if c.alone == 0 || c.joined == 0 {
		c.joins = true
		return
	}
	r := c.joined * c.procs / (min(c.slots, c.procs) * c.alone)
	switch {
	case c.joins && r > 1.1:
		c.joins, c.aloneRuns = false, 0
	case !c.joins && r < 0.9:
		c.joins, c.probeEvery = true, probeBase
	}
}

// ranAlone counts a run alone (one that did not join because joining did
// not pay) and starts a probe when one is due.
func (c *costModel) ranAlone() {
	c.aloneRuns++
	if c.aloneRuns < c.probeEvery {
		return
	}
	c.aloneRuns = 0
	c.probeEvery = min(2*c.probeEvery, probeMax)
	c.readProcs()
	c.joins, c.probing = true, 2
}

// gathers reports whether a request that finds the batcher idle should
// gather company (Batcher.gather) rather than run alone at once. Only
// while joining pays: then a gathering that brings one more request on
// average (gatherN ≥ 1.5) saves at least a run per two requests, far more
// than its cost (a yield, and a goroutine hand-off per request joined).
// When gatherings bring nobody, as with a lone caller, every
// gatherProbe-th lone run still tries, so that a change is seen.
func (c *costModel) gathers() bool {
	if !c.joins {
		return false
	}
	if c.gatherN >= 1.5 {
		return true
	}
	c.gatherSkip++
	if c.gatherSkip < gatherProbe {
		return false
	}
	c.gatherSkip = 0
	return true
}

// gathered records how many requests a gathering ran.
func (c *costModel) gathered(n int) {
	c.gatherN += (float64(n) - c.gatherN) / 8
}

// expected is the expected run time of rows rows joined (0: unknown).
func (c *costModel) expected(rows int64) time.Duration {
	per := c.joined
	if per == 0 {
		per = c.alone
	}
	return time.Duration(per * float64(rows))
}

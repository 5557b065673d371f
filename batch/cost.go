package batch

import "time"

// costModel is adaptive mode's measure of whether joining pays. Guarded by
// Batcher.mu.
//
// Whether joining pays depends on more than the model: on the requests'
// own cost around the run (an HTTP request costs ten times a 4 µs model),
// on what runs beside one another cost (two runs of a memory-bound model
// on two cores each take twice as long), on how many cores there are and
// how many callers. No formula over the run times alone predicted it on
// the machines here (one that compared joined and lone run times per row
// chose wrongly for the fraud model under load, which batching makes twice
// as fast). So the batcher measures what it is asked to improve: rows
// answered per second in each mode, over windows of at least minWindow
// (and 16 runs), and keeps the better mode (a bandit with two arms).
//
//   - It starts joining. Every so often (exploreBase windows at first) it
//     spends two windows in the other mode, after one unmeasured window
//     to let the switch settle (a queue to form or drain), and compares
//     the two rates, each an exponentially weighted mean of its windows.
//   - The other mode wins if it answered 10% more: the batcher stays in
//     it. Otherwise the next exploration is spaced so that explorations
//     cost about 1% of the rows (an exploration costs three windows at the
//     loser's rate): the more the other mode lost by, the longer the wait,
//     from exploreBase up to exploreMax windows (about 2 s), so that a
//     change of load is still seen.
//
// Below capacity (an open loop, or few callers) both modes answer what
// arrives, the rates tie, and the batcher stays where it is, which is
// joining unless it once lost clearly: there, a lone request runs at once
// in either mode.
//
// Separately, it keeps estimates of wall time per row of runs that had
// the model to themselves (alone: runs of one request; joined: joined
// runs), for the time limits of joined runs (expected). Noise only ever
// adds time, so the estimates follow a sample below them four times as
// fast as one above: a low quantile, not the mean.
type costModel struct {
	joins bool       // the mode of the current window
	best  bool       // the mode that answered more
	rate  [2]float64 // rows/s answered, [0] alone, [1] joining; 0: not measured
	win   window
	phase phase
	since int // measured windows in the best mode since the last exploration
	every int // windows between explorations

	alone, joined float64 // ns per row of runs that had the model to themselves; 0: none yet

	// gatherN is the mean number of requests a caller that gathered
	// company (Batcher.gather) ran, from a prior of gatherPrior so that
	// one gathering that found nobody does not stop them; gatherSkip
	// counts the lone runs since the last gathering.
	gatherN    float64
	gatherSkip int64
}

// window counts the rows answered since start.
type window struct {
	start time.Time
	rows  int64
}

type phase uint8

const (
	steady    phase = iota // measuring the best mode
	leaving                // first window in the other mode: not measured
	exploring              // measuring the other mode, first window
	compared               // measuring the other mode, second window; then compare
	returning              // first window back in the best mode: not measured
)

const (
	minWindow   = 20 * time.Millisecond
	exploreBase = 8
	exploreMax  = 96
	exploreCost = 0.01 // the share of the rows explorations may cost
	// Weights of a new sample below and above a run-time estimate.
	costDown, costUp = 1.0 / 8, 1.0 / 32
	rateAlpha        = 1.0 / 4 // weight of a new window's rate
	gatherProbe      = 64
	gatherPrior      = 2
	gatherOn         = 1.5 // the mean company a gathering must bring to go on
	// minRunBudget is the least a joined run is allowed before it is
	// suspect (see limitLocked), whatever the measurements say: timers and
	// the scheduler cannot be trusted much below it on a busy machine.
	minRunBudget = time.Millisecond
)

func newCostModel() costModel {
	return costModel{joins: true, best: true, every: exploreBase, since: exploreBase - 1, gatherN: gatherPrior}
}

func mode(joins bool) int {
	if joins {
		return 1
	}
	return 0
}

// answered counts rows answered by a run that ended at now; run is the
// mean run time, which sets the window's least length.
func (c *costModel) answered(now time.Time, rows int64, run time.Duration) {
	if c.win.start.IsZero() {
		c.win.start = now
	}
	c.win.rows += rows
	d := now.Sub(c.win.start)
	if d < max(minWindow, 16*run) {
		return
	}
	r := float64(c.win.rows) / d.Seconds()
	c.win = window{start: now}
	switch c.phase {
	case steady:
		c.rate[mode(c.joins)] = weigh(c.rate[mode(c.joins)], r)
		if c.since++; c.since >= c.every {
			c.since = 0
			c.phase, c.joins = leaving, !c.best
		}
	case leaving:
		c.phase = exploring
	case exploring:
		c.rate[mode(c.joins)] = weigh(c.rate[mode(c.joins)], r)
		c.phase = compared
	case compared:
		c.rate[mode(c.joins)] = weigh(c.rate[mode(c.joins)], r)
		other, best := c.rate[mode(c.joins)], c.rate[mode(c.best)]
		if best == 0 || other > 1.1*best {
			c.best, c.phase, c.every = c.joins, steady, exploreBase
			return
		}
		// An exploration costs three windows at the worse rate: space
		// them so that they cost about 1% of the rows, but explore at
		// least every exploreMax windows, so that a change is seen.
		loss := max(0, 1-other/best)
		c.every = int(min(max(3*loss/exploreCost, exploreBase), exploreMax))
		c.phase, c.joins = returning, c.best
	case returning:
		c.phase = steady
	}
}

func weigh(mean, sample float64) float64 {
	if mean == 0 {
		return sample
	}
	return mean + rateAlpha*(sample-mean)
}

// ran records a run that had the model to itself: reqs requests, rows
// rows, d from start to hand-out.
func (c *costModel) ran(d time.Duration, rows int64, reqs int) {
	perRow := float64(d) / float64(max(rows, 1))
	if reqs == 1 {
		c.alone = estimate(c.alone, perRow)
	} else {
		c.joined = estimate(c.joined, perRow)
	}
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

// gathers reports whether a request that finds the batcher idle should
// gather company (Batcher.gather) rather than run alone at once. Only
// while joining: then a gathering that brings one more request on average
// (gatherN ≥ 1.5) saves at least a run per two requests, far more than its
// cost (a yield, and a goroutine hand-off per request joined). When
// gatherings bring nobody, as with a lone caller, every gatherProbe-th
// lone run still tries, so that a change is seen.
func (c *costModel) gathers(sampled bool) bool {
	if !c.joins {
		return false
	}
	if c.gatherN >= gatherOn {
		return true
	}
	c.gatherSkip++
	if c.gatherSkip < gatherProbe && !sampled {
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

package batch

import (
	"math"
	"runtime"
	"time"
)

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
// (and 16 runs), and the CPU time each row cost, and keeps the better mode
// (a bandit with two arms).
//
//   - It starts joining. Once it has measured that for exploreBase, and
//     every so often after, it spends two windows in the other mode,
//     after one unmeasured window that lasts until the old mode's runs are
//     over (a queue drained, runs alone ended: their rows are not the
//     new mode's), and compares the other mode's rate over those two
//     windows with the best mode's over all its windows since the last
//     exploration (rows over time, pooled: a window of 20 ms on a machine
//     shared with other work can be off by half).
//   - The CPU time per row decides where the rates cannot (cheaper):
//     running alone when joining does not save a tenth of it, joining
//     when running alone costs more than 1.5 times as much, while the
//     rates differ by less than twice their noise and do not lean the
//     other way. Rates that lean the other way make a tie (pooled, as
//     below): the CPU per row predicts the rates only where both modes
//     keep as many cores busy, and joining keeps one run slot busy.
//     Where the cores cannot make up the difference, the CPU per row
//     decides whatever the rates say: running alone at more than
//     GOMAXPROCS times joining's CPU per row, or joining at no less than
//     running alone's.
//   - Otherwise the other mode wins if it answered more by a margin:
//     10% over one exploration, shrinking as the root of what both modes
//     have pooled, down to 2% (margin). An exploration too close to tell
//     (a loss within the noise, closeLoss, shrinking the same way, or a
//     win within the margin) is pooled with the next, which comes soon,
//     and so is the best mode's side: both are then measured over the
//     same stretch of time, interleaved. A fixed 10% kept a mode that
//     lost by 5 to 9% for ever. After a win within 10%, the old mode's
//     pool goes on as the other mode's, so that moving back takes as much
//     evidence as the move did: on a tie, no flapping.
//   - Explorations are spaced in time so that they cost about 1% of the
//     rows: an exploration costs the time it spent away (leaving and
//     returning included) times what the other mode lost by. In time,
//     not in windows: a window lasts at least 16 runs, and joined runs of
//     a model that does not batch are long, so explorations spaced in
//     windows cost several times their share. From exploreBase up to
//     exploreMax, so that a change of load is still seen, and after a
//     loss at most doubling from one exploration to the next (or four
//     times the time away), so that one exploration spoilt by a burst of
//     other work is soon looked at again.
//
// Measured with BenchmarkBatch on the conv net at 64 callers, the scheme
// before this one (rates as a weighted mean of 20 ms windows, explorations
// spaced in windows, the first after one window) ran joined, at about half
// the rate, for a third to a half of the time, and one noisy window could
// keep it there for seconds; with the wide MLP, rates alone could not
// tell the modes apart in a noisy second, where the CPU per row (33 µs
// joined, 75 alone) always can.
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
	cpu   func() time.Duration // the process's CPU time (processCPU; tests fake it)
	procs int                  // the cores running alone can keep busy at most (GOMAXPROCS)
	joins bool                 // the mode of the current window
	best  bool                 // the mode that answered more
	rate  [2]float64           // rows/s, [0] alone, [1] joining: the best mode's since the last exploration, the other's at it; 0: not measured
	win   window
	last  time.Time // the last answer (answered)
	phase phase
	// pool sums the best mode's measured windows since the last
	// exploration, and during one, the other mode's measured windows.
	pool, other window
	away        time.Duration // time out of the best mode in this exploration
	since       time.Duration // time in the best mode since the last exploration
	every       time.Duration // time in the best mode between explorations
	// close: the last exploration was too close to tell (a loss within
	// the noise, or a win by less than margin), so both pools go on: the
	// best mode's is not started afresh on return (see margin).
	close bool

	alone, joined float64 // ns per row of runs that had the model to themselves; 0: none yet

	// gatherN is the mean number of requests a caller that gathered
	// company (Batcher.gather) ran, from a prior of gatherPrior so that
	// one gathering that found nobody does not stop them; gatherSkip
	// counts the lone runs since the last gathering.
	gatherN    float64
	gatherSkip int64
}

// window counts the rows answered since start, or (pooled) over d, and
// the process's CPU time meanwhile.
type window struct {
	start    time.Time
	rows     int64
	d, cpu   time.Duration
	startCPU time.Duration
}

func (w *window) add(rows int64, d, cpu time.Duration) {
	w.rows += rows
	w.d += d
	w.cpu += cpu
}

// cpuPerRow is the CPU time per row answered (0: unknown).
func (w window) cpuPerRow() float64 {
	if w.rows == 0 || w.cpu <= 0 {
		return 0
	}
	return float64(w.cpu) / float64(w.rows)
}

// half counts a pooled window's measures half.
func (w window) half() window {
	return window{rows: w.rows / 2, d: w.d / 2, cpu: w.cpu / 2}
}

func (w window) rate() float64 {
	if w.d <= 0 {
		return 0
	}
	return float64(w.rows) / w.d.Seconds()
}

type phase uint8

const (
	steady    phase = iota // measuring the best mode
	leaving                // first window in the other mode, until the old mode's runs are over: not measured
	exploring              // measuring the other mode, first window
	compared               // measuring the other mode, second window; then compare
	returning              // first window back in the best mode: not measured
)

const (
	minWindow   = 20 * time.Millisecond
	exploreBase = 8 * minWindow
	exploreMax  = 5 * time.Second
	// closeLoss: an exploration that measured closePool of the other
	// mode and found it lost by less is within a shared machine's noise.
	closeLoss = 0.25
	closePool = 2 * minWindow
	// winMargin: the other mode wins by answering this much more, over
	// winPool of each mode measured; the margin shrinks as the root of
	// what is pooled, down to winFloor (see margin).
	winMargin = 0.1
	winPool   = closePool
	winFloor  = 0.02
	// closeMax: pools of close explorations beyond this count half (the
	// margin reaches its floor at 1 s). Longer pools are slower to see a
	// change of load after a long near-tie: with 2 s, a mode that became
	// 15% slower after 20 s of a 2% difference kept 43% of the next 3 s,
	// against 33% with 1 s and 26% with the fixed 10% margin before.
	closeMax = time.Second
	// overrulePool: the rates overrule the CPU per row (see compared)
	// only once this much of the other mode is pooled.
	overrulePool = 4 * closePool
	// cpuVeto: running alone must cost less than this many times the CPU
	// per row of joining to be chosen (see cheaper).
	cpuVeto = 1.5
	// leaveMax bounds the window that leaves a mode (answered).
	leaveMax = 10 * minWindow
	// windowRuns: a window lasts at least this many mean run times.
	windowRuns  = 8
	exploreCost = 0.01 // the share of the rows explorations may cost
	// Weights of a new sample below and above a run-time estimate.
	costDown, costUp = 1.0 / 8, 1.0 / 32
	gatherProbe      = 64
	gatherPrior      = 2
	gatherOn         = 1.5 // the mean company a gathering must bring to go on
	// minRunBudget is the least a joined run is allowed before it is
	// suspect (see limitLocked), whatever the measurements say: timers and
	// the scheduler cannot be trusted much below it on a busy machine.
	minRunBudget = time.Millisecond
)

func newCostModel() costModel {
	// The first exploration comes once joining has been measured for
	// exploreBase: one window alone is too noisy to compare with.
	return costModel{cpu: processCPU, procs: runtime.GOMAXPROCS(0), joins: true, best: true, every: exploreBase, gatherN: gatherPrior}
}

// spacing is the time in the best mode until the next exploration, which
// costs about the time this one spent away at loss: exploreCost of the
// rows, within exploreBase and exploreMax.
func (c *costModel) spacing(loss float64) time.Duration {
	return min(max(time.Duration(float64(c.away)*loss/exploreCost), exploreBase), exploreMax)
}

// cheaper reports which mode the CPU time per row favours: joining when
// running alone costs more than cpuVeto times as much per row (the
// current exploration's measure against the best mode's), and running
// alone when joining does not save a tenth of it. ok is false in between,
// or when it cannot tell: then rates decide.
//
// Why CPU as well as rows per second: on a machine shared with other
// work, the cores the process gets change from one 20 ms window to the
// next, and so do the rates, but the CPU a row costs in each mode does
// not. Rows per second are the cores a mode keeps busy over the CPU a row
// costs, and running alone keeps at least as many busy as one run slot
// (every caller runs): so a joined row that costs about as much as one
// alone never pays, and one that costs a fraction of it (cpuVeto) is the
// better bet on two cores under any other load. Measured here
// (BenchmarkBatch, cpu-µs/row, alone/joined): the fraud MLP 4.2/2.4 at 8
// callers, the wide MLP 75/34 at 64, the conv net 36/63 at 64 under load
// and 33/31 quieter.
//
// It is a prior, not the measure: joining runs one batch at a time
// (DefaultMaxInFlight), so it keeps one core on the model, while running
// alone keeps as many as there are callers and cores. Rows per second are
// the cores busy over the CPU per row, so where running alone has two
// idle cores, it answers more at up to twice joining's CPU per row: the
// fraud MLP at 8 callers on a quiet machine, 4.2 µs a row alone against
// 2.4 joined (1.75 times), answered 10% more alone, and a CPU rule that
// decided alone kept it joining, at 0.89 times unbatched. So compared
// only decides by the CPU per row while the rates cannot tell the modes
// apart and do not lean the other way.
//
// sure reports that no rates could overrule it: joining, when running
// alone costs more than procs times its CPU per row (running alone on
// every core answers less than joining on one); running alone, when
// joining costs at least as much (joining keeps fewer cores busy).
func (c *costModel) cheaper() (joins, ok, sure bool) {
	a, j := c.other, c.pool // exploring alone: the pool is joining's
	if c.joins {
		a, j = c.pool, c.other
	}
	ca, cj := a.cpuPerRow(), j.cpuPerRow()
	switch {
	case ca == 0 || cj == 0:
		return false, false, false
	case ca > cpuVeto*cj:
		return true, true, ca > float64(max(c.procs, 1))*cj
	case cj*1.1 > ca:
		return false, true, cj >= ca
	}
	return false, false, false
}

func mode(joins bool) int {
	if joins {
		return 1
	}
	return 0
}

// answered counts rows answered by runs runs, the last of which ended at
// now; run is the mean run time, which sets the window's least length.
// settled reports that no run of the other mode is left (see leaving).
func (c *costModel) answered(now time.Time, rows, runs int64, run time.Duration, settled bool) {
	span := max(minWindow, windowRuns*run) // a window's least length
	if gap := now.Sub(c.last); !c.last.IsZero() && gap > span && c.busy(runs, run) < gap/2 {
		// The load paused: nothing was answered for longer than a
		// window lasts, and the runs answered now (the untimed ones
		// counted in bulk included: one in fastSample is timed and
		// answered here) took less than half that time. The window
		// open since before the pause would count the pause's time,
		// and the CPU that other work (other models, other requests)
		// spent meanwhile, for the mode it measures: start it again,
		// from this answer on. With the load on and off every 100 ms
		// beside other work (the conv net at 256 callers in
		// BenchmarkBatchInterleaved), the pauses made running alone
		// look more than twice as costly a row as joining, which it
		// was not, and the batcher joined at 0.6 times the rows
		// running alone answered.
		c.win = window{}
		rows = 0
	}
	c.last = now
	if c.win.start.IsZero() {
		c.win.start, c.win.startCPU = now, c.cpu()
	}
	c.win.rows += rows
	d := now.Sub(c.win.start)
	// The window that leaves a mode lasts until that mode's runs are
	// over (a joined backlog drained, the runs alone in flight ended):
	// their rows would count for the other mode. Measured on the wide MLP
	// at 64 callers, a backlog of joined rows made 20 ms of running alone
	// look twice as fast as joining, which it is not, and the batcher ran
	// alone at a third of the rate.
	// Bounded, in case the other mode always has runs going (requests
	// larger than a batch always queue).
	if d < span || (c.phase == leaving && !settled && d < leaveMax) {
		return
	}
	rows = c.win.rows
	cpuNow := c.cpu()
	cpu := cpuNow - c.win.startCPU
	c.win = window{start: now, startCPU: cpuNow}
	switch c.phase {
	case steady:
		c.pool.add(rows, d, cpu)
		c.rate[mode(c.joins)] = c.pool.rate()
		if c.since += d; c.since >= c.every {
			c.since, c.away = 0, 0
			c.phase, c.joins = leaving, !c.best
		}
	case leaving:
		c.away += d
		c.phase = exploring
	case exploring:
		c.away += d
		c.other.add(rows, d, cpu)
		c.phase = compared
	case compared:
		c.away += d
		c.other.add(rows, d, cpu)
		other, best := c.other.rate(), c.pool.rate()
		c.rate[mode(c.joins)] = other
		noise := closeLoss * math.Sqrt(float64(closePool)/float64(c.other.d))
		if joins, ok, sure := c.cheaper(); ok && best > 0 && (sure || math.Abs(other/best-1) < 2*noise || c.other.d < overrulePool) {
			// The rates cannot tell the modes apart: the CPU time per
			// row decides (see cheaper), but only while the rates are
			// within twice their noise, or measured over too little of
			// the other mode to overrule it (one exploration on a
			// machine under load can be off by more than half), or
			// where no rates could (sure). Beyond, the rates decide:
			// they are what the batcher is asked to improve. Under
			// load 13-20, where the load moved over seconds rather
			// than from one window to the next, pooled rates still
			// chose running alone for the wide MLP at 2.7 times
			// joining's CPU per row: on 2 cores it cannot answer more.
			switch {
			case joins == c.joins && (sure || other >= best):
				other = max(other, 1.2*best)
			case joins != c.joins && (sure || other <= best):
				other = min(other, best/2)
			default:
				// The rates lean the other way, within their noise: a
				// tie. Pooled with the next explorations, the rates
				// tell in the end; the CPU per row alone would keep
				// joining where two cores running alone answer more
				// (the fraud MLP at 8 callers on a quiet machine: 1.75
				// times joining's CPU per row, 10% more rows).
				other = best
			}
		}
		win := c.margin()
		if best == 0 || other > (1+win)*best {
			// The other mode is the best now; its exploration's
			// windows are the first of its pool. The next exploration
			// costs what the old mode lost by: space it as below.
			c.best, c.phase = c.joins, steady
			c.every = exploreBase
			if best > 0 {
				c.every = c.spacing(1 - best/other)
			}
			old := c.pool
			c.pool, c.other = c.other, window{}
			if win < winMargin {
				// A small win, told from pooled explorations: the old
				// mode's pool is what the next exploration adds to, so
				// that moving back takes as much evidence as this move
				// did (no flapping on a tie).
				c.other = old
			}
			c.close = false
			return
		}
		c.phase, c.joins = returning, c.best
		loss := max(0, 1-other/best)
		if loss < noise || other > best {
			c.close = true
			if min(c.pool.d, c.other.d) > closeMax {
				// Pooled long enough for the margin's floor: older
				// windows count half, so that a change is still seen.
				c.pool = c.pool.half()
				c.other = c.other.half()
			}
			// Too close to tell on a shared machine, where 20 ms of
			// either mode may be off by half: look again soon, and pool
			// what the next exploration measures with this one (the
			// noise of a pool shrinks as the root of its length).
			// Spacing these by the loss measured so far, as below, was
			// tried: it kept the model in the worse mode longer where
			// the noise hid a clear loss (TestCostModelNoisyMachine).
			c.every = exploreBase
			return
		}
		// An exploration cost the time away at the loser's rate: space
		// them so that they cost about exploreCost of the rows, but
		// explore at least every exploreMax, so that a change is seen.
		// What was measured counts half at the next exploration. The
		// spacing at most doubles from one exploration to the next, or
		// is four times the time away if that is more: one exploration
		// that a burst of other work spoilt must not keep the worse mode
		// for exploreMax. It did: the conv net at 256 callers, in
		// BenchmarkBatchInterleaved, sure from one exploration that
		// running alone cost 47 times joining's CPU a row (a pause the
		// cost model missed, since fixed: busy), joined for the next 5 s
		// at 0.57 times unbatched (TestCostModelOneSpoiltExploration).
		c.every = min(c.spacing(loss), max(2*c.every, 4*c.away))
		c.other = c.other.half()
		c.close = false
	case returning:
		c.phase = steady
		if !c.close {
			c.pool = window{} // measure the best mode afresh, as it is now
		}
	}
}

// busy is about the time runs runs answered at once took: the timed one
// at the mean run time, the others (lone runs of one row, counted in
// bulk) at a lone run's, or while no lone run has been timed yet, at a
// joined row's (a row alone costs about that, or more where joining
// pays). Not the mean run time for all: a joined run's would count the
// runs of one row thirty to a hundred times over, and a pause after them
// for none (the conv net at 256 callers: 2 ms joined, 30 µs alone). It
// did, before the first lone run was timed: the first exploration of
// running alone, 117 runs answered after a pause of 118 ms, looked 320 ms
// busy, its window counted the pause, and running alone cost 47 times
// joining's CPU a row, which made joining sure (cheaper) until the next
// exploration 5 s later: BenchmarkBatchInterleaved conv/c256 joined at
// 0.57 times unbatched in one round of three to six.
func (c *costModel) busy(runs int64, run time.Duration) time.Duration {
	lone := run
	switch {
	case c.alone > 0:
		lone = time.Duration(c.alone)
	case c.joined > 0:
		lone = time.Duration(c.joined)
	}
	return run + time.Duration(max(runs-1, 0))*lone
}

// margin is how much more than the best mode the other must answer to
// win: winMargin over one exploration, less as both modes' pools grow
// (the noise of a pooled rate shrinks as the root of its length), down to
// winFloor. A fixed 10% kept a mode that lost by 5 to 9% for ever: the
// fraud MLP at 8 callers, in-process on 2 cores, joined at 0.95 times
// the rows running alone answered. The best mode's pool goes on over
// explorations only while they are close (c.close), so both rates are
// measured over the same stretch of time, interleaved, as a side-by-side
// benchmark is.
func (c *costModel) margin() float64 {
	d := min(c.pool.d, c.other.d)
	if d <= 0 {
		return winMargin
	}
	return min(winMargin, max(winFloor, winMargin*math.Sqrt(float64(winPool)/float64(d))))
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
// lone run of the locked path still tries, so that a change is seen.
//
// Not the lone runs that the fast path sends to the locked path to be
// timed (fast.go), as it did: at one in 64 requests, a lone caller of the
// fraud MLP paid for a gathering (an item, a cancellable ctx, a run
// watched by the scheduler, a channel hand-off: several µs) every 64
// runs of 4 µs. While callers come together, the fast path is rarely
// free and lone runs of the locked path are frequent, so probes still
// come soon; with a lone caller they come every 4096 requests.
func (c *costModel) gathers() bool {
	if !c.joins {
		return false
	}
	if c.gatherN >= gatherOn {
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

package batch

import (
	"context"
	"time"

	"github.com/servekit/servekit/serving"
)

// This file holds the lone request's fast path: a one-row request without
// parameters, at an idle batcher with no other caller on its way, runs in
// its caller's goroutine, under its caller's ctx, without taking mu,
// reading the clock or recording a metric. It is what a lone caller pays
// for batching (BenchmarkLoneOverhead, BenchmarkLonePaired): two atomic
// operations and the panic guard, in Predict's own frame.
//
// Batcher.fast packs what that decision needs into one word, so that
// taking the run slot is one compare-and-swap:
//
//   - fastHeld: a fast run holds the run slot.
//   - fastBusy: the batcher is not idle (something queued or running in a
//     slot, halves to rerun, closed, a caller gathering, or a
//     configuration or mode in which a lone request must not run at once).
//     It is kept by syncLocked under mu, and set by whoever reads the
//     slot's state under mu (fastHeldLocked) before it reads fastHeld:
//     either the fast run's compare-and-swap comes first and the reader
//     sees fastHeld, or the reader's bit comes first and the swap fails.
//     A fast run that ends with fastBusy set takes mu and starts what
//     waits, as a lone run that ends does.
//   - the generation (bits 8 and up): lone runs started, fast ones and
//     those of the locked path (Batcher.loneLocked). One in fastSample
//     takes the locked path, timed and measured as before, so that the
//     cost model and the run-time metrics keep seeing lone runs without a
//     clock read on the others; the fast runs' rows are added to the cost
//     model's windows in bulk (fastAccountedLocked), and to the metrics at
//     collection (telemetry.observe).
const (
	fastHeld   = 1 << 0
	fastBusy   = 1 << 1
	fastGen    = 1 << 8
	fastSample = 64
)

// takeFast takes the run slot for a fast run if it can; ok reports
// whether it did, held is the word it set. The caller has checked that
// req has one row and no parameters (no serving.ParamTimeout to give the
// run a limit of its own), and that ctx has not ended. Small enough to be
// inlined into Predict.
func (b *Batcher) takeFast() (held uint64, ok bool) {
	v := b.fast.Load()
	// Another caller on its way would be joined by a lone run of the
	// locked path (adaptive mode waits for it): leave those to it.
	if v&(fastHeld|fastBusy) != 0 || (v/fastGen)%fastSample == fastSample-1 || b.pending.Load() != 0 {
		return 0, false
	}
	held = v + fastGen | fastHeld
	return held, b.fast.CompareAndSwap(v, held)
}

// fastDone gives the slot of the fast run that set held back when
// Predict could not do it with one compare-and-swap (the batcher became
// busy meanwhile, or the scheduler ended the run), or when the model
// panicked. Predict runs the fast run itself, under its own panic guard:
// see there why.
func (b *Batcher) fastDone(ctx context.Context, resp *serving.Response, err error, held uint64) (*serving.Response, error) {
	if b.releaseFast(held / fastGen) {
		// Ended at its limit (watchFastLocked): the slot was given back
		// meanwhile; as on the locked path, an answer is still an answer.
		return b.endedResult(ctx, resp, err)
	}
	b.hookDone()
	return resp, err
}

// releaseFast gives the slot of fast run gen back. It reports whether the
// scheduler had ended the run (and so taken the slot back itself).
func (b *Batcher) releaseFast(gen uint64) (ended bool) {
	for {
		v := b.fast.Load()
		if v&fastHeld == 0 || v/fastGen != gen {
			return true
		}
		if b.fast.CompareAndSwap(v, v&^fastHeld) {
			if v&fastBusy != 0 {
				// Someone found the slot taken: do what a lone run that
				// ends does (runLone's afterRunLocked).
				b.mu.Lock()
				b.afterRunLocked(b.cfg.clock.Now())
				b.unlock()
			}
			return false
		}
	}
}

// fastHeldLocked reports whether a fast run holds the run slot, after
// making sure that none can start (fastBusy) until syncLocked sees the
// batcher idle again. Every decision under mu to use the slot reads it
// through here (slotsLocked).
func (b *Batcher) fastHeldLocked() bool {
	if !b.busy {
		b.busy = true
		return b.fast.Or(fastBusy)&fastHeld != 0
	}
	return b.fast.Load()&fastHeld != 0
}

// slotsLocked is the number of run slots taken, a fast run's included.
func (b *Batcher) slotsLocked() int {
	n := b.inflight
	if b.fastHeldLocked() {
		n++
	}
	return n
}

// unlock lets go of mu after syncLocked.
func (b *Batcher) unlock() {
	b.syncLocked()
	b.mu.Unlock()
}

// syncLocked sets fastBusy from the state under mu: clear only when a
// lone request could run at once (see direct).
func (b *Batcher) syncLocked() {
	idle := b.queued == 0 && b.inflight == 0 && len(b.retry) == 0 && !b.closed && !b.gathering &&
		b.cfg.loneAtOnce && !(b.cfg.adaptive && b.cost.joins && b.cost.gatherN >= gatherOn)
	b.syncLooseLocked()
	switch {
	case idle && b.busy:
		b.busy = false
		b.fast.And(^uint64(fastBusy))
	case !idle && !b.busy:
		b.busy = true
		b.fast.Or(fastBusy)
	}
}

// loneRanLocked counts a lone run of the locked path in the generation,
// so that the fast path's sampling moves on.
func (b *Batcher) loneRanLocked() {
	b.fast.Add(fastGen)
	b.loneLocked++
}

// fastRunsLocked is the number of fast runs so far (one in progress
// included).
func (b *Batcher) fastRunsLocked() int64 {
	return int64(b.fast.Load()/fastGen - b.loneLocked)
}

// fastAccountedLocked returns the fast runs and loose runs (loose.go)
// since its last call: rows answered that the cost model has not counted
// yet.
func (b *Batcher) fastAccountedLocked() int64 {
	n := b.untimedLocked()
	d := n - b.fastCounted
	b.fastCounted = n
	return d
}

// watchFastLocked makes the scheduler end a fast run that holds the slot
// for longer than the max run time, counted from when it was first seen
// holding it by a request that waits for the slot: a fast run reads no
// clock, and its limit matters only to those who wait. Like a lone run
// under a ctx that can never end, it is not cancelled: it only gives the
// slot back.
func (b *Batcher) watchFastLocked(now time.Time) {
	v := b.fast.Load()
	if v&fastHeld == 0 || b.fastWatch.gen == v/fastGen {
		return
	}
	b.fastWatch.gen, b.fastWatch.limit = v/fastGen, now.Add(b.cfg.maxRun)
	b.watchLimitLocked(b.fastWatch.limit)
}

// fastLimitLocked is the limit of the fast run that holds the slot, if it
// is watched (zero: none).
func (b *Batcher) fastLimitLocked() time.Time {
	if v := b.fast.Load(); v&fastHeld != 0 && v/fastGen == b.fastWatch.gen {
		return b.fastWatch.limit
	}
	return time.Time{}
}

// expireFastLocked ends the fast run that holds the slot if it passed its
// limit: the slot is free at once; its caller, when the model returns,
// finds it ended (releaseFast).
func (b *Batcher) expireFastLocked(now time.Time) {
	limit := b.fastLimitLocked()
	if limit.IsZero() || now.Before(limit) {
		return
	}
	v := b.fast.Load()
	if v&fastHeld != 0 && v/fastGen == b.fastWatch.gen && b.fast.CompareAndSwap(v, v&^fastHeld) {
		b.stats.Ended++
		b.hookDone()
	}
}

// fastWatch is the fast run the scheduler watches (watchFastLocked).
type fastWatch struct {
	gen   uint64
	limit time.Time
}

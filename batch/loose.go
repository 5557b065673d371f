package batch

import (
	"context"

	"github.com/servekit/servekit/serving"
)

// This file holds the runs alone without the lock: while adaptive mode
// runs every request alone (costModel.joins false), a one-row request
// under a ctx that can never end runs in its caller's goroutine beside
// the others, as if unbatched, without taking mu, reading the clock or
// recording a metric: what the fast path (fast.go) is for a lone caller,
// this is for many.
//
// Why: running alone wins where many callers keep every core busy, and
// there every run alone of the locked path (runAlone) took mu twice. With
// 256 callers of the conv net, each ORT call holds an OS thread that
// competes with the others for the cores, so a goroutine that holds mu
// could be off CPU for milliseconds while the rest queue on it: measured
// (BenchmarkBatch conv/c256, load 2-5), the wait for mu after a run had a
// p99 of 4-40 ms and a max of 250 ms, which unbatched callers never pay,
// and batched p99 was 69 ms against unbatched's 0.08.
//
// Batcher.loose packs the state into one word, so that a run costs two
// atomic additions:
//
//   - bits 0-23: loose runs going on (they count as runs beside the
//     others: a joined run that starts meanwhile does not have the model
//     to itself, and the scheduler does not exit until they are over);
//   - looseOpen: syncLocked sets it while running alone is the mode and
//     the batcher is open. A run adds itself to the count first and reads
//     looseOpen in the same operation; whoever clears looseOpen (under
//     mu) reads the count in its own: either the run sees it clear and
//     backs out, or the one who cleared it sees the run and waits for it.
//     A run that brings the count to 0 with looseOpen clear wakes the
//     scheduler, which may be waiting for it to exit or to settle the
//     cost model's window (leaving: runs alone over);
//   - bits 32 and up: runs alone finished, these and the locked path's
//     (Batcher.aloneLocked counts the latter), so that one in looseSample
//     takes the locked path: timed, measured by the cost model, which
//     counts the others' rows in bulk, as it does the fast runs'.
const (
	looseOpen   = 1 << 24
	looseCount  = looseOpen - 1
	looseDone   = 1 << 32
	looseSample = 64
)

// tryLoose runs req without the lock if it can; ok reports whether it
// did. The caller has checked what takeFast's caller checks.
func (b *Batcher) tryLoose(ctx context.Context, req *serving.Request) (resp *serving.Response, err error, ok bool) {
	// While joining (looseOpen clear), as with a lone caller whose fast
	// run was sampled for the locked path (one in fastSample), a look is
	// enough: a run that added itself and backed out would bring the count
	// to 0 with looseOpen clear and wake the scheduler for nothing (a
	// futex wake-up and a thread switch per sampled run, 1 in 64 of a lone
	// caller's requests; perf, BenchmarkBatch fraud c1). Only a run that
	// saw it set races with its clearing, and backs out as below.
	if b.loose.Load()&looseOpen == 0 {
		return nil, nil, false
	}
	v := b.loose.Add(1)
	if v&looseOpen == 0 || (v/looseDone)%looseSample == looseSample-1 {
		b.looseEnd(b.loose.Add(^uint64(0)))
		return nil, nil, false
	}
	if b.cfg.hook != nil {
		b.cfg.hook(1)
	}
	resp, err = b.predict(ctx, req)
	b.looseEnd(b.loose.Add(looseDone - 1))
	b.hookDone()
	return resp, err, true
}

// looseEnd wakes the scheduler if v, the word after a loose run ended or
// backed out, shows the last one gone after looseOpen was cleared.
func (b *Batcher) looseEnd(v uint64) {
	if v&(looseOpen|looseCount) == 0 {
		b.nudge()
	}
}

// looseRunning is the number of loose runs going on.
func (b *Batcher) looseRunning() int { return int(b.loose.Load() & looseCount) }

// syncLooseLocked sets looseOpen from the state under mu.
func (b *Batcher) syncLooseLocked() {
	open := b.cfg.adaptive && !b.cost.joins && !b.closed
	if open == b.looseOn {
		return
	}
	b.looseOn = open
	if open {
		b.loose.Or(looseOpen)
	} else {
		b.loose.And(^uint64(looseOpen))
	}
}

// aloneRanLocked counts a run alone of the locked path among the finished
// ones, so that the sampling moves on.
func (b *Batcher) aloneRanLocked() {
	b.loose.Add(looseDone)
	b.aloneLocked++
}

// looseRunsLocked is the number of loose runs finished so far.
func (b *Batcher) looseRunsLocked() int64 {
	return int64(b.loose.Load()/looseDone - b.aloneLocked)
}

// untimedLocked is the number of runs that read no clock and took no
// lock: fast runs (one in progress included) and finished loose runs.
func (b *Batcher) untimedLocked() int64 {
	return b.fastRunsLocked() + b.looseRunsLocked()
}

package batch

import (
	"context"
	"sync"

	"github.com/servekit/servekit/serving"
)

// This file holds the runs in callers' goroutines: a lone request at an
// idle batcher, and, while running alone wins, every request.

// direct runs a request in the caller's goroutine, with the caller's ctx,
// when it would be dispatched alone at once anyway: the batcher is idle
// (nothing queued or running) and the dispatch rule needs no company
// (adaptive with no other caller on its way, or a zero max delay). This is
// the low-load path: it costs no goroutine hand-off, so a lone request
// pays almost nothing for batching. It takes a run slot, as a batch would.
//
// In adaptive mode, while the cost model says joining does not pay, every
// request runs here, alone and without a slot, side by side with the
// others, as if unbatched.
//
// It reports whether it ran the request, and if not, whether the request
// should gather company (see gather).
func (b *Batcher) direct(ctx context.Context, req *serving.Request, rows int64) (resp *serving.Response, err error, ran, gather bool) {
	b.mu.Lock()
	if b.closed {
		b.unlock()
		return nil, nil, false, false
	}
	if b.queued == 0 && len(b.retry) == 0 && b.slotsLocked() == 0 && b.aloneReadyLocked(rows) {
		b.loneRanLocked()
		if b.cfg.adaptive && b.cost.gathers() {
			b.unlock()
			return nil, nil, false, true
		}
		resp, err := b.runLone(ctx, req, rows)
		return resp, err, true, false
	}
	if !b.cfg.adaptive || b.cost.joins {
		b.unlock()
		return nil, nil, false, false
	}
	resp, err = b.runAlone(ctx, req, rows)
	return resp, err, true, false
}

// runLone runs a request that found the batcher idle, holding the run slot
// (see direct). Called with mu held; it unlocks it.
func (b *Batcher) runLone(ctx context.Context, req *serving.Request, rows int64) (*serving.Response, error) {
	b.pending.Add(-1) // running now; a queue that forms waits for the run anyway
	now := b.cfg.clock.Now()
	caller := ctx
	l := &b.lone
	// Shutdown may have to cancel the run, and the scheduler end it at its
	// limit. A ctx that can never end is left alone: wrapping it would make
	// the backend prepare for cancellation on every call (ORT run options),
	// which is most of what a lone request would pay for batching. At its
	// limit such a run only gives its slot back.
	if ctx.Done() != nil {
		ctx, l.cancel = context.WithCancel(ctx)
		defer l.cancel()
	}
	l.on = true
	l.gen++
	gen := l.gen
	l.limit = now.Add(b.cfg.maxRun)
	if d, ok := ctx.Deadline(); ok {
		l.limit = d
	}
	b.watchLimitLocked(l.limit)
	b.inflight++
	solo, runGen := b.beginLocked()
	b.unlock()

	b.tel.queued(0)
	resp, err := b.predict(ctx, req)
	elapsed := b.cfg.clock.Since(now)
	b.tel.ran(elapsed, rows, 1)
	b.mu.Lock()
	// A later lone run can start only once this one has freed the slot, so
	// l.ended reaches gen only if this run was ended.
	ended := l.ended >= gen
	if !ended {
		l.on, l.cancel = false, nil
		b.inflight--
		b.finishLocked(solo, runGen, elapsed, rows, 1)
	}
	end := now.Add(elapsed)
	b.ranLocked(end, elapsed, rows, 1)
	b.stats.Direct++
	b.afterRunLocked(end)
	b.unlock()
	if ended {
		return b.endedResult(caller, resp, err)
	}
	b.hookDone()
	return resp, err
}

// runAlone runs a request in its caller's goroutine without a run slot,
// beside whatever else runs, because joining does not pay (see direct).
// Called with mu held; it unlocks it.
func (b *Batcher) runAlone(ctx context.Context, req *serving.Request, rows int64) (*serving.Response, error) {
	b.pending.Add(-1)
	now := b.cfg.clock.Now()
	caller := ctx
	b.stats.Alone++
	b.aloneRanLocked()
	// Only a run that can be cancelled is watched: one under a ctx that can
	// never end holds no slot, so there is nothing to give back.
	var bt *batch
	if ctx.Done() != nil {
		bt = runPool.Get().(*batch)
		bt.rows = rows
		ctx, bt.cancel = context.WithCancel(ctx)
		defer bt.cancel()
		bt.limit = now.Add(b.cfg.maxRun)
		if d, ok := ctx.Deadline(); ok {
			bt.limit = d
		}
		b.running[bt] = struct{}{}
		b.watchLimitLocked(bt.limit)
	}
	solo, runGen := b.beginLocked()
	b.unlock()

	b.tel.queued(0)
	resp, err := b.predict(ctx, req)
	elapsed := b.cfg.clock.Since(now)
	b.tel.ran(elapsed, rows, 1)
	b.mu.Lock()
	ended := bt != nil && bt.ended
	if bt != nil && !ended {
		delete(b.running, bt)
	}
	if !ended {
		b.finishLocked(solo, runGen, elapsed, rows, 1)
	}
	b.ranLocked(now.Add(elapsed), elapsed, rows, 1)
	b.stats.Direct++
	if b.closed {
		b.watchLocked(now) // the scheduler may be waiting for this run to exit
	}
	b.unlock()
	if bt != nil {
		*bt = batch{}
		runPool.Put(bt)
	}
	if ended {
		return b.endedResult(caller, resp, err)
	}
	b.hookDone()
	return resp, err
}

// endedResult is what the caller of a run in its goroutine that the
// scheduler ended gets: DeadlineExceeded, or its own ctx's error if that
// ended too (the limit of a run under a deadline is that deadline, and
// the two race). Never the model's: that is about the scheduler's cancel.
func (b *Batcher) endedResult(caller context.Context, resp *serving.Response, err error) (*serving.Response, error) {
	if err == nil {
		return resp, nil // it finished as it was ended
	}
	if caller.Err() != nil {
		return nil, serving.ContextError(caller, "batch: predict")
	}
	return nil, b.overLimit()
}

// runPool holds the records of runs in callers' goroutines.
var runPool = sync.Pool{New: func() any { return new(batch) }}

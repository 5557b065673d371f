package batch

import (
	"context"
	"slices"
	"time"

	"github.com/servekit/servekit/serving"
)

// This file keeps one request from holding a batch or the model hostage:
// every run has a time limit, the scheduler ends the runs that pass it,
// and the members still waiting on a joined run that failed, or that was
// ended, are run again in two halves. See "One request cannot hold a batch
// hostage" in the package doc.

// group is one half of a split batch, waiting to run as it is: never
// joined with other requests, so that the halving finds its culprit.
type group struct {
	items []*item
	rows  int64
}

// limitLocked sets bt's time limit, when it starts at now. A run of one
// request gets the request's own limit: its deadline, or its first run
// plus the max run time. A joined run gets half the time left to its most
// urgent member, so that, if the run is stuck, there is time to run the
// others again in halves (each half gets half of what is left, and so on:
// a stuck member costs its neighbours at most the time they had). Never
// less than four times the run's expected time (and minRunBudget): a
// member that waited in the queue until little of its time was left must
// not make a healthy run look stuck, or an overloaded model would spend
// its time cancelling and splitting runs.
func (b *Batcher) limitLocked(bt *batch, now time.Time) {
	var soonest time.Time
	live := 0
	for _, it := range bt.items {
		if it.state != running {
			continue
		}
		if it.limit.IsZero() {
			it.limit = now.Add(b.cfg.maxRun)
		}
		if live == 0 || it.limit.Before(soonest) {
			soonest = it.limit
		}
		live++
	}
	switch {
	case live == 0:
		bt.limit = time.Time{}
	case live == 1:
		bt.limit = soonest
	default:
		floor := max(minRunBudget, 4*b.cost.expected(bt.rows))
		bt.limit = now.Add(max(soonest.Sub(now)/2, floor))
	}
	b.watchLimitLocked(bt.limit)
}

// loneRun is the run in a caller's goroutine that holds the run slot (see
// Batcher.direct). There is at most one: it starts only on an idle
// batcher. It is kept apart from Batcher.running so that a lone request,
// the low-load case, pays no map update for being watched.
type loneRun struct {
	on     bool
	gen    uint64 // counts lone runs
	ended  uint64 // gen of the last one the scheduler ended (they only grow)
	limit  time.Time
	cancel context.CancelFunc // nil under a ctx that cannot end
}

// watchLimitLocked makes sure the scheduler wakes by limit. It nudges the
// scheduler only when its timer would fire too late: runs start with
// later limits than the runs before them as a rule, and the scheduler
// keeps its timer after the run it was set for has ended (dispatchLocked),
// so it wakes about once per limit, not once per run, at any load.
func (b *Batcher) watchLimitLocked(limit time.Time) {
	if !limit.IsZero() && (b.timerAt.IsZero() || limit.Before(b.timerAt)) {
		b.timerAt = limit // the nudge makes the scheduler set it; avoid nudging again
		b.nudge()
	}
}

// expireLocked ends the runs that passed their limits.
func (b *Batcher) expireLocked(now time.Time) {
	b.expireFastLocked(now)
	if l := &b.lone; l.on && !now.Before(l.limit) {
		// The caller's goroutine is in the model: cancel its run (if its
		// ctx can end) and free the slot; the caller reports the error.
		l.on, l.ended = false, l.gen
		if l.cancel != nil {
			l.cancel()
		}
		b.inflight--
		b.active--
		b.stats.Ended++
		b.hookDone()
	}
	for bt := range b.running {
		if !bt.limit.IsZero() && !now.Before(bt.limit) {
			b.endLocked(bt, now)
		}
	}
}

// nextLimitLocked is the earliest limit of a run (zero: none).
func (b *Batcher) nextLimitLocked() (next time.Time) {
	if b.lone.on {
		next = b.lone.limit
	}
	if l := b.fastLimitLocked(); !l.IsZero() && (next.IsZero() || l.Before(next)) {
		next = l
	}
	for bt := range b.running {
		if !bt.limit.IsZero() && (next.IsZero() || bt.limit.Before(next)) {
			next = bt.limit
		}
	}
	return next
}

// endLocked ends a run that passed its limit: its context is cancelled (a
// backend that honours it, as the ONNX backend does, stops the run at the
// next operator), its run slot is free at once, and whoever runs it drops
// its result when the model returns. A batch's runner is stuck in the
// model until then, so another runner takes its place.
//
// Of the members still waiting, one whose own limit passed fails with
// DeadlineExceeded; the others run again, two or more in halves, one
// alone. A member run alone after a run was ended is the likely culprit,
// so it runs outside the run slots (in a goroutine of its own, until its
// own limit): whatever it does, the model's slots serve everyone else.
func (b *Batcher) endLocked(bt *batch, now time.Time) {
	bt.ended = true
	delete(b.running, bt)
	if bt.cancel != nil {
		bt.cancel()
	}
	b.active--
	b.stats.Ended++
	if bt.slot {
		b.inflight--
	}
	b.hookDone()
	if bt.items == nil { // a run in its caller's goroutine: the caller reports it
		return
	}
	if bt.suspect {
		b.soloDoneLocked(now)
	}
	if bt.runner {
		b.runs.Add(1)
		go b.runner()
	}
	var live, over []*item
	for _, it := range bt.items {
		it.kept = true
		switch {
		case it.state != running:
		case !now.Before(it.limit) || b.closedNoDrainLocked():
			over = append(over, it)
		default:
			live = append(live, it)
		}
	}
	// Not counted as callers on their way (answeredLocked): one of them
	// may be the caller that gathered this batch, stuck in the model
	// until it returns, and the queue must not wait for it.
	for _, it := range over {
		it.state = done
		err := b.overLimit()
		if b.closedNoDrainLocked() {
			err = serving.ErrClosed
		}
		it.res <- result{err: err} // cap 1: never blocks; last, the caller may reuse it
	}
	if len(live) == 1 {
		b.soloLocked(live[0], now)
		return
	}
	if len(live) > 1 {
		for _, g := range b.splitLocked(live) {
			if len(g.items) == 1 {
				it := g.items[0]
				b.leaveGroupLocked(it)
				b.soloLocked(it, now)
			}
		}
	}
}

// soloLocked runs a suspect member alone and without a run slot; or, if
// twice as many suspects as there are run slots already run so, it waits
// for one of them to end. Twice: the two members of a split pair both run
// at once, so the innocent one is not held behind the culprit. (When the
// model hangs on every request, every member ends up a suspect: they must
// not all run at once.)
func (b *Batcher) soloLocked(it *item, now time.Time) {
	if b.solos >= 2*b.cfg.maxFlight {
		it.state, it.batch, it.grp = retrying, nil, &b.suspects
		b.suspects.items = append(b.suspects.items, it)
		b.suspects.rows += it.rows
		return
	}
	b.solos++
	ctx, cancel := context.WithCancel(context.Background())
	bt := &batch{items: []*item{it}, live: 1, cancel: cancel, rows: it.rows, suspect: true}
	it.state, it.batch = running, bt
	b.running[bt] = struct{}{}
	bt.solo, bt.gen = b.beginLocked()
	b.limitLocked(bt, now)
	b.runs.Add(1)
	go func() {
		defer b.runs.Done()
		b.runOne(ctx, bt, false)
	}()
}

// soloDoneLocked is called when a suspect's run alone ends: the next
// suspect waiting, if any, runs.
func (b *Batcher) soloDoneLocked(now time.Time) {
	b.solos--
	if len(b.suspects.items) > 0 {
		it := b.suspects.items[0]
		b.leaveGroupLocked(it)
		b.soloLocked(it, now)
	}
}

// overLimit is the error of a request whose run passed its limit.
func (b *Batcher) overLimit() error {
	return serving.Errorf(serving.DeadlineExceeded, "batch: model %q: the run passed its time limit and was ended", b.md.Name)
}

// splitLocked puts the members still waiting of a failed or ended run back
// in two halves, ahead of everything queued (they have waited longest) but
// behind the halves split before them: if one half is stuck again, its
// sibling from the split before runs first, not after all of its halves.
func (b *Batcher) splitLocked(live []*item) [2]*group {
	b.stats.Isolations++
	mid := len(live) / 2
	halves := [2]*group{{items: live[:mid:mid]}, {items: live[mid:]}}
	for _, g := range halves {
		for _, it := range g.items {
			it.state, it.batch, it.grp = retrying, nil, g
			g.rows += it.rows
		}
	}
	b.retry = append(b.retry, halves[0], halves[1])
	return halves
}

// leaveGroupLocked takes an item whose caller left out of its group.
func (b *Batcher) leaveGroupLocked(it *item) {
	g := it.grp
	if i := slices.Index(g.items, it); i >= 0 {
		g.items = slices.Delete(g.items, i, i+1)
		g.rows -= it.rows
	}
	if len(g.items) == 0 {
		if i := slices.Index(b.retry, g); i >= 0 {
			b.retry = slices.Delete(b.retry, i, i+1)
		}
	}
	it.grp = nil
}

// takeRetryLocked removes the first group waiting to run again.
func (b *Batcher) takeRetryLocked() []*item {
	g := b.retry[0]
	b.retry = slices.Delete(b.retry, 0, 1)
	for _, it := range g.items {
		it.grp = nil
	}
	return g.items
}

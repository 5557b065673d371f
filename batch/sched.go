package batch

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// batch is a dispatched group of items and the run that answers them.
type batch struct {
	one    [1]result // the answer of a batch of one, without an allocation
	items  []*item
	rows   int64
	live   int // guarded by Batcher.mu: members still waiting
	cancel context.CancelFunc
	// timing records the batch's runs, which its members are charged with
	// (chargeLocked).
	timing serving.Timing
}

// loop is the scheduler: it dispatches ready batches and sleeps until a
// request arrives, a run ends, or the next max-delay deadline. It exits once
// the Batcher is closed and nothing is queued or running.
func (b *Batcher) loop() {
	defer close(b.done)
	defer close(b.work) // nothing can be dispatched any more: the runners exit
	defer b.tel.unobserve()
	for {
		b.mu.Lock()
		wakeAt, exit := b.dispatchLocked()
		b.timerAt = wakeAt
		b.mu.Unlock()
		if exit {
			return
		}
		var tc <-chan time.Time
		var t timer
		if !wakeAt.IsZero() {
			t = b.cfg.clock.NewTimer(wakeAt.Sub(b.cfg.clock.Now()))
			tc = t.C()
			// The clock may have passed wakeAt between the two reads: the
			// timer then fires late (or, with a clock that moves in steps,
			// as the tests' does, never). Look again instead of waiting.
			if !b.cfg.clock.Now().Before(wakeAt) {
				t.Stop()
				continue
			}
		}
		select {
		case <-b.wake:
		case <-tc:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// dispatchLocked starts every batch that is ready while run slots are free,
// the highest-priority head first across keys. It returns when to wake for
// the next deadline (zero: only an event can make progress) and whether the
// scheduler should exit.
func (b *Batcher) dispatchLocked() (wakeAt time.Time, exit bool) {
	now := b.cfg.clock.Now()
	b.startReadyLocked(now)
	if b.closed && len(b.order) == 0 && b.inflight == 0 {
		return time.Time{}, true
	}
	if b.inflight >= b.cfg.maxFlight {
		return time.Time{}, false // a finishing run wakes us
	}
	for _, q := range b.order {
		if d := q.oldest().Add(b.cfg.maxDelay); d.After(now) && (wakeAt.IsZero() || d.Before(wakeAt)) {
			wakeAt = d
		}
	}
	return wakeAt, false
}

// startReadyLocked starts every batch that is ready while run slots are
// free, each in a new goroutine.
func (b *Batcher) startReadyLocked(now time.Time) {
	for b.inflight < b.cfg.maxFlight {
		q := b.pickLocked(now)
		if q == nil {
			return
		}
		ctx, bt := b.startLocked(q, now)
		b.work <- job{ctx, bt} // never blocks: one slot per batch in flight
	}
}

// pickLocked returns the ready queue whose head has the highest priority
// (the oldest among equals), or nil.
func (b *Batcher) pickLocked(now time.Time) *queue {
	b.stalled.Store(false) // readyLocked sets it again if it still applies
	var best *queue
	for _, q := range b.order {
		if b.readyLocked(q, now) && (best == nil || before(q.head(), best.head())) {
			best = q
		}
	}
	return best
}

func before(a, b *item) bool {
	return a.level < b.level || (a.level == b.level && a.enq.Before(b.enq))
}

// readyLocked decides whether q should run now. See the package doc.
func (b *Batcher) readyLocked(q *queue, now time.Time) bool {
	switch {
	case b.draining, q.rows >= b.cfg.maxRows, !now.Before(q.oldest().Add(b.cfg.maxDelay)):
		return true
	case len(b.cfg.preferred) > 0 && q.rows >= b.cfg.preferred[0]:
		return true
	case b.cfg.adaptive:
		// Batch while busy: with a batch running, the queue waits for it
		// (the running batch's end picks it up) unless it is full. With
		// none running, it waits only for the callers on their way (about
		// to queue, or just answered and likely to come back): waiting
		// for them costs a goroutine wake-up or two, while dispatching
		// without them would split one batch into several runs.
		return b.inflight == 0 && b.noneOnTheWay()
	}
	return false
}

// noneOnTheWay reports whether no caller is on its way (Batcher.pending).
// It sets stalled before it reads pending, and the callers decrement
// pending before they read stalled, so either it sees the last one leave
// or that one sees stalled and dispatches (all atomics are sequentially
// consistent).
func (b *Batcher) noneOnTheWay() bool {
	b.stalled.Store(true)
	if b.pending.Load() <= 0 {
		b.stalled.Store(false)
		return true
	}
	return false
}

// aloneReadyLocked is readyLocked for a queue that would hold just rows.
func (b *Batcher) aloneReadyLocked(rows int64) bool {
	switch {
	case b.cfg.maxDelay == 0, rows >= b.cfg.maxRows:
		return true
	case len(b.cfg.preferred) > 0 && rows >= b.cfg.preferred[0]:
		return true
	case b.cfg.adaptive:
		return b.pending.Load() <= 1 // the caller itself
	}
	return false
}

// limitLocked is how many rows a batch from q may take: the largest
// preferred size that the queue can fill, else the max.
func (b *Batcher) limitLocked(q *queue) int64 {
	for i := len(b.cfg.preferred) - 1; i >= 0; i-- {
		if p := b.cfg.preferred[i]; p <= q.rows {
			return p
		}
	}
	return b.cfg.maxRows
}

// startLocked takes a batch from q and counts it in flight.
func (b *Batcher) startLocked(q *queue, now time.Time) (context.Context, *batch) {
	items := q.take(b.limitLocked(q))
	if q.empty() {
		b.dropLocked(q)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bt := &batch{items: items, live: len(items), cancel: cancel}
	for _, it := range items {
		it.state, it.batch = running, bt
		bt.rows += it.rows
		// now may be a little older than a request that joined the queue
		// while the last run ended (runOne reads the clock before it takes
		// the lock): such a request waited nothing, not a negative time,
		// which would pull down the histogram's sum.
		wait := max(now.Sub(it.enq), 0)
		b.stats.QueueTime += wait
		b.tel.queued(wait)
		it.timing.AddQueue(wait)
		if it.span != nil {
			it.span.End()
		}
	}
	b.queued -= bt.rows
	b.inflight++
	b.running[bt] = struct{}{}
	return ctx, bt
}

// job hands a dispatched batch, with the context its run is cancelled
// through, to a runner.
type job struct {
	ctx context.Context
	bt  *batch
}

// runner answers dispatched batches until the scheduler exits. After each
// batch it takes the next ready one itself rather than hand its slot back:
// under load that saves a goroutine hand-off per batch.
func (b *Batcher) runner() {
	defer b.runs.Done()
	for j := range b.work {
		ctx, bt := j.ctx, j.bt
		for bt != nil {
			ctx, bt = b.runOne(ctx, bt)
		}
	}
}

func (b *Batcher) runOne(ctx context.Context, bt *batch) (context.Context, *batch) {
	start := b.cfg.clock.Now()
	var span trace.Span
	if first := bt.items[0].parent; first.IsValid() {
		// batch.run continues the first member's trace and links them all.
		links := make([]trace.Link, 0, len(bt.items))
		for _, it := range bt.items {
			if it.parent.IsValid() {
				links = append(links, trace.Link{SpanContext: it.parent})
			}
		}
		ctx, span = b.tel.tracer.Start(trace.ContextWithSpanContext(ctx, first), "batch.run",
			b.tel.spanAttrs, trace.WithLinks(links...))
	}
	rs, isolated := b.answer(serving.WithTiming(ctx, &bt.timing), bt)
	bt.cancel()
	endSpan(span) // before the callers hear

	elapsed := b.cfg.clock.Since(start)
	now := start.Add(elapsed)
	b.tel.ran(elapsed, bt.rows, len(bt.items))
	// Stats count the batch, and pending its callers, before they hear.
	b.mu.Lock()
	b.inflight--
	delete(b.running, bt)
	b.ranLocked(elapsed, bt.rows, len(bt.items), isolated)
	chargeLocked(bt)
	b.answeredLocked(bt.items)
	var next *batch
	if !b.closedNoDrainLocked() {
		if q := b.pickLocked(now); q != nil {
			ctx, next = b.startLocked(q, now)
		}
	}
	if next == nil {
		b.afterRunLocked(now)
	}
	b.mu.Unlock()
	send(bt.items, rs)
	return ctx, next
}

// chargeLocked charges each member of a batch that ran with the batch's
// compute time, as Triton charges it, and makes the first member still
// waiting the one that reports the batch's runs (serving.Timing), so that
// each run is counted once. Before the answers are sent: a member's
// caller reads its Timing once it has its answer.
func chargeLocked(bt *batch) {
	v := bt.timing.Values()
	reporter := true
	for _, it := range bt.items {
		if it.state != running {
			continue
		}
		it.timing.Charge(v, reporter)
		reporter = false
	}
}

// afterRunLocked is called when a run frees its slot without taking the
// next batch itself: another slot may take one, and the scheduler may
// need to set a timer for what waits, or to exit.
func (b *Batcher) afterRunLocked(now time.Time) {
	if b.queued > 0 && !b.closedNoDrainLocked() {
		b.startReadyLocked(now)
	}
	b.watchLocked()
}

// closedNoDrainLocked: after Close the scheduler decides what is left.
func (b *Batcher) closedNoDrainLocked() bool { return b.closed && !b.draining }

func (b *Batcher) ranLocked(elapsed time.Duration, rows int64, reqs int, isolated int64) {
	b.runEWMA.ran(elapsed)
	s := &b.stats
	s.Batches++
	s.Requests += int64(reqs)
	s.Rows += rows
	s.RunTime += elapsed
	s.RowsPerBatch[bucket(rows)]++
	s.Isolations += isolated
}

// answer runs the batch and returns each member's answer. If a joined run
// fails with an error that could be one member's fault, every member is
// run alone so that only the culprit fails; it returns 1 then.
func (b *Batcher) answer(ctx context.Context, bt *batch) (rs []result, isolated int64) {
	if len(bt.items) == 1 {
		resp, err := b.predict(ctx, bt.items[0].req)
		bt.one[0] = result{resp, err}
		return bt.one[:], 0
	}
	var err error
	if joined, jerr := join(bt.items); jerr != nil {
		err = jerr
	} else if resp, perr := b.predict(ctx, joined); perr != nil {
		err = perr
	} else if parts, serr := splitResponse(resp, bt.items, bt.rows); serr != nil {
		err = serr
	} else {
		return parts, 0
	}
	rs = make([]result, len(bt.items))
	if !isolatable(err) || ctx.Err() != nil {
		for i := range rs {
			rs[i].err = err
		}
		return rs, 0
	}
	for i, it := range bt.items {
		rs[i].err = err
		if !b.gone(it) {
			rs[i].resp, rs[i].err = b.predict(ctx, it.req)
		}
	}
	return rs, 1
}

// answeredLocked marks a batch's members answered. A caller whose last
// chunk is answered is on its way out, and counts in pending until it is
// gone: a batch formed meanwhile waits for it, since in a closed loop it
// comes straight back (see readyLocked). It is counted before the answer
// is sent, so that pending never misses it.
func (b *Batcher) answeredLocked(items []*item) {
	var n int64
	for _, it := range items {
		if it.state == running {
			it.state = done
			if it.last {
				it.counted = true
				n++
			}
		}
	}
	b.pending.Add(n)
}

// send hands the members their answers, after answeredLocked. Each item
// is touched last by its send: its caller may reuse it at once.
func send(items []*item, rs []result) {
	for i, it := range items {
		it.res <- rs[i]
	}
}

// predict calls the model, turning a panic into an Internal error. The
// panic is logged with its stack (slog.Default: the batcher has no logger
// of its own), since it never reaches the transport's recovery; callers
// are told only that the model failed, as the panic value may hold
// internals.
func (b *Batcher) predict(ctx context.Context, req *serving.Request) (resp *serving.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("batch: model panicked", "model", b.md.Name, "version", b.md.Version,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, serving.Errorf(serving.Internal, "batch: model %q failed with an internal error", b.md.Name)
		}
	}()
	return b.next.Predict(ctx, req)
}

func (b *Batcher) gone(it *item) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return it.state == left
}

// isolatable reports whether a failed joined run may be one member's fault.
// Overload, unavailability and cancellation are about the model, not the
// rows, so re-running members alone would only add load.
func isolatable(err error) bool {
	switch serving.CodeOf(err) {
	case serving.Unavailable, serving.ResourceExhausted, serving.Canceled, serving.DeadlineExceeded:
		return false
	}
	return true
}

// estimator keeps an exponentially weighted mean of the run time of a
// batch, for the Retry-After estimate. Guarded by Batcher.mu.
type estimator struct {
	runDur float64 // ns per batch run
}

const runAlpha = 0.2

func (e *estimator) ran(d time.Duration) {
	if e.runDur == 0 {
		e.runDur = float64(d)
		return
	}
	e.runDur += runAlpha * (float64(d) - e.runDur)
}

func (e *estimator) run() time.Duration { return time.Duration(e.runDur) }

package batch

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// batch is one run: a dispatched group of items and the run that answers
// them, or (items nil) a request run alone in its caller's goroutine.
type batch struct {
	one     [1]result // the answer of a batch of one, without an allocation
	items   []*item
	rows    int64
	live    int                // guarded by Batcher.mu: members still waiting
	cancel  context.CancelFunc // nil for a run under a ctx that cannot end
	limit   time.Time          // guarded by Batcher.mu: when the run is over its time (limitLocked); zero: never
	gen     uint64             // Batcher.runGen when it started (beginLocked)
	solo    bool               // nothing else was running when it started
	slot    bool               // holds a run slot (Batcher.inflight)
	runner  bool               // run by a runner goroutine (not a caller's, nor a suspect's own)
	suspect bool               // a suspect run alone, outside the run slots (soloLocked)
	ended   bool               // guarded by Batcher.mu: ended at its limit; its result is dropped
	// timing records the run, which its members are charged with
	// (chargeLocked).
	timing serving.Timing
}

// loop is the scheduler: it dispatches ready batches, ends runs past their
// time limits, and sleeps until a request arrives, a run ends, or the next
// max-delay deadline or run limit. It exits once the Batcher is closed and
// nothing is queued or running.
func (b *Batcher) loop() {
	defer close(b.done)
	defer close(b.work) // nothing can be dispatched any more: the runners exit
	defer b.tel.unobserve()
	for {
		b.mu.Lock()
		wakeAt, exit := b.dispatchLocked()
		b.timerAt = wakeAt
		b.unlock()
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
	b.expireLocked(now)
	b.startReadyLocked(now)
	wakeAt = b.nextLimitLocked()
	if b.closed && len(b.order) == 0 && len(b.retry) == 0 && len(b.suspects.items) == 0 && b.active == 0 &&
		b.fast.Load()&fastHeld == 0 && b.looseRunning() == 0 {
		return time.Time{}, true
	}
	if wakeAt.IsZero() && b.timerAt.After(now) {
		// Keep the timer of a run that has ended until it fires (at most
		// the max run time), as if the run went on: a run that starts
		// meanwhile with a later limit, as runs do as a rule, is then
		// watched without waking the scheduler (watchLimitLocked). Cleared
		// instead, every lone run of a lone caller (one in fastSample of a
		// fraud MLP's in-process calls, every call of one under a ctx that
		// can end, as through HTTP) woke the scheduler to set a timer for
		// a run of a few µs that was over by then: a futex wake-up, a
		// thread switch and a contended lock each time (BenchmarkBatch,
		// fraud c1, with tryLoose's wake-up, since gone too: 1 to 4
		// context switches per lone run of the locked path, p99 of 17 to
		// 23 µs against 4 µs unbatched). A wake-up with nothing to end
		// costs one look at the runs.
		wakeAt = b.timerAt
	}
	if b.slotsLocked() >= b.cfg.maxFlight {
		return wakeAt, false // a finishing run wakes us, or a limit
	}
	for _, q := range b.order {
		if d := q.oldest().Add(b.cfg.maxDelay); d.After(now) && (wakeAt.IsZero() || d.Before(wakeAt)) {
			wakeAt = d
		}
	}
	return wakeAt, false
}

// startReadyLocked starts every batch that is ready while run slots are
// free, handing each to a runner.
func (b *Batcher) startReadyLocked(now time.Time) {
	for b.slotsLocked() < b.cfg.maxFlight {
		ctx, bt := b.nextLocked(now)
		if bt == nil {
			return
		}
		bt.runner = true
		b.work <- job{ctx, bt} // never blocks: one slot per batch in flight
	}
}

// nextLocked starts the next batch that should run, if any: a half of a
// split batch first (its members have waited longest), then the ready
// queue whose head comes first.
func (b *Batcher) nextLocked(now time.Time) (context.Context, *batch) {
	if len(b.retry) > 0 {
		return b.startLocked(b.takeRetryLocked(), now)
	}
	q := b.pickLocked(now)
	if q == nil {
		return nil, nil
	}
	return b.startLocked(b.takeLocked(q, now), now)
}

// takeLocked takes the next batch's items out of q.
func (b *Batcher) takeLocked(q *queue, now time.Time) []*item {
	items := q.take(b.rowLimitLocked(q))
	if q.empty() {
		b.dropLocked(q)
	}
	var rows int64
	for _, it := range items {
		rows += it.rows
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
	b.queued -= rows
	return items
}

// gather runs the queue that a caller who found the batcher idle started,
// once the goroutines ready to run have had their turn: those about to
// call Predict queue behind it meanwhile (the queues wait while a caller
// gathers), and it runs them all in its own goroutine, holding the run
// slot, as it would have run alone. On a server with one core (GOMAXPROCS
// 1), the handlers of requests that arrived together are ready to run but
// cannot be "on their way" in Predict at once, so without this nothing
// would ever be joined there. The cost model decides when it pays
// (costModel.gathers).
func (b *Batcher) gather(it *item) {
	runtime.Gosched()
	b.mu.Lock()
	if !b.gathering || it.state != queued || b.slotsLocked() >= b.cfg.maxFlight {
		// Dispatched meanwhile (a full batch, the max delay, Close), or
		// the slot is taken: the item waits for its batch as any other.
		b.gathering = false
		b.unlock()
		return
	}
	b.gathering = false
	now := b.cfg.clock.Now()
	ctx, bt := b.startLocked(b.takeLocked(it.q, now), now)
	b.cost.gathered(len(bt.items))
	b.unlock()
	b.runOne(ctx, bt, false)
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
	case b.gathering:
		return false // the caller who gathers runs it
	case b.cfg.adaptive:
		// Batch while busy: with a batch running, the queue waits for it
		// (the running batch's end picks it up) unless it is full. With
		// none running, it waits only for the callers on their way (about
		// to queue, or just answered and likely to come back): waiting
		// for them costs a goroutine wake-up or two, while dispatching
		// without them would split one batch into several runs.
		return b.slotsLocked() == 0 && b.noneOnTheWay()
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

// rowLimitLocked is how many rows a batch from q may take: the largest
// preferred size that the queue can fill, else the max.
func (b *Batcher) rowLimitLocked(q *queue) int64 {
	for i := len(b.cfg.preferred) - 1; i >= 0; i-- {
		if p := b.cfg.preferred[i]; p <= q.rows {
			return p
		}
	}
	return b.cfg.maxRows
}

// startLocked makes a batch of items, takes a run slot for it and sets its
// time limit.
func (b *Batcher) startLocked(items []*item, now time.Time) (context.Context, *batch) {
	b.gathering = false // whoever gathers will find its item taken
	ctx, cancel := context.WithCancel(context.Background())
	bt := &batch{items: items, live: len(items), cancel: cancel, slot: true}
	for _, it := range items {
		it.state, it.batch = running, bt
		bt.rows += it.rows
	}
	b.inflight++
	b.running[bt] = struct{}{}
	bt.solo, bt.gen = b.beginLocked()
	b.limitLocked(bt, now)
	return ctx, bt
}

// beginLocked counts a run as started. It returns whether the run has the
// model to itself so far and the run count, for finishLocked.
func (b *Batcher) beginLocked() (solo bool, gen uint64) {
	solo = b.active == 0 && b.looseRunning() == 0
	b.active++
	b.runGen++
	if b.cfg.hook != nil {
		b.cfg.hook(1)
	}
	return solo, b.runGen
}

// finishLocked counts a run as finished (one the scheduler ended was
// counted then) and, if it had the model to itself throughout, gives its
// time to the cost model.
func (b *Batcher) finishLocked(solo bool, gen uint64, d time.Duration, rows int64, reqs int) {
	b.active--
	if solo && gen == b.runGen {
		b.cost.ran(d, rows, reqs)
	}
}

// hookDone tells a test hook that a run handed out its answers.
func (b *Batcher) hookDone() {
	if b.cfg.hook != nil {
		b.cfg.hook(-1)
	}
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
// A runner whose batch the scheduler ended exits once the model returns:
// another runner has taken its place.
func (b *Batcher) runner() {
	defer b.runs.Done()
	for j := range b.work {
		ctx, bt := j.ctx, j.bt
		for bt != nil {
			var ended bool
			if ctx, bt, ended = b.runOne(ctx, bt, true); ended {
				return
			}
		}
	}
}

func (b *Batcher) runOne(ctx context.Context, bt *batch, chain bool) (context.Context, *batch, bool) {
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
	rs, failed := b.answer(serving.WithTiming(ctx, &bt.timing), bt)
	bt.cancel()
	endSpan(span) // before the callers hear

	elapsed := b.cfg.clock.Since(start)
	now := start.Add(elapsed)
	b.tel.ran(elapsed, bt.rows, len(bt.items))
	// Stats count the batch, and pending its callers, before they hear.
	b.mu.Lock()
	if bt.ended {
		// Ended at its limit: its members were seen to, and its slot
		// and this runner's place were given to others.
		b.unlock()
		return nil, nil, true
	}
	if bt.slot {
		b.inflight--
	}
	delete(b.running, bt)
	if bt.suspect {
		b.soloDoneLocked(now)
	}
	cost := elapsed
	if sent := b.sendNs.Swap(0); len(bt.items) > 1 {
		cost += time.Duration(sent * bt.rows) // the last joined batch's hand-out, per row, stands in for this one's
	}
	b.finishLocked(bt.solo, bt.gen, cost, bt.rows, len(bt.items))
	chargeLocked(bt) // before failedLocked: the members still waiting ran, whatever comes next
	items := bt.items
	if failed != nil {
		items, rs = b.failedLocked(bt, failed)
	}
	b.ranLocked(now, elapsed, bt.rows, len(bt.items))
	b.answeredLocked(items)
	var next *batch
	if chain && !b.closedNoDrainLocked() {
		if ctx, next = b.nextLocked(now); next != nil {
			next.runner = true
		}
	}
	if next == nil {
		b.afterRunLocked(now)
	}
	b.unlock()
	if len(items) > 1 {
		t := b.cfg.clock.Now()
		send(items, rs)
		b.sendNs.Store(int64(b.cfg.clock.Since(t)) / max(bt.rows, 1))
	} else {
		send(items, rs)
	}
	b.hookDone()
	return ctx, next, false
}

// failedLocked handles a joined run that failed with an error that may be
// one member's fault: the members still waiting run again in two halves,
// or, if just one is left, it gets the error. It returns who to answer.
func (b *Batcher) failedLocked(bt *batch, err error) ([]*item, []result) {
	var live []*item
	for _, it := range bt.items {
		if it.state == running {
			live = append(live, it)
		}
	}
	if len(live) == 1 || (len(live) > 1 && b.closedNoDrainLocked()) {
		rs := make([]result, len(live))
		for i := range rs {
			rs[i].err = err
		}
		return live, rs
	}
	if len(live) > 1 {
		b.splitLocked(live)
	}
	return nil, nil
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
	if (b.queued > 0 || len(b.retry) > 0) && !b.closedNoDrainLocked() {
		b.startReadyLocked(now)
	}
	b.watchLocked(now)
}

// closedNoDrainLocked: after Close the scheduler decides what is left.
func (b *Batcher) closedNoDrainLocked() bool { return b.closed && !b.draining }

func (b *Batcher) ranLocked(now time.Time, elapsed time.Duration, rows int64, reqs int) {
	b.runEWMA.ran(elapsed)
	// The fast runs since the last run counted are answered rows too
	// (fast.go): their cost is in the window's time, since they ran in it.
	// Settled: joining, no run alone is left (runs outside the slots);
	// alone, no joined backlog is.
	settled := b.queued == 0
	if b.cost.joins {
		settled = b.active+b.looseRunning() == b.inflight
	}
	untimed := b.fastAccountedLocked()
	b.cost.answered(now, rows+untimed, 1+untimed, b.runEWMA.run(), settled)
	s := &b.stats
	s.Batches++
	s.Requests += int64(reqs)
	s.Rows += rows
	s.RunTime += elapsed
	s.RowsPerBatch[bucket(rows)]++
}

// answer runs the batch and returns each member's answer. If a joined run
// fails with an error that could be one member's fault, it returns that
// error instead, for failedLocked.
func (b *Batcher) answer(ctx context.Context, bt *batch) (rs []result, failed error) {
	if len(bt.items) == 1 {
		resp, err := b.predict(ctx, bt.items[0].req)
		bt.one[0] = result{resp, err}
		return bt.one[:], nil
	}
	var err error
	if joined, jerr := join(bt.items); jerr != nil {
		err = jerr
	} else if resp, perr := b.predict(ctx, joined); perr != nil {
		err = perr
	} else if parts, serr := splitResponse(resp, bt.items, bt.rows); serr != nil {
		err = serr
	} else {
		return parts, nil
	}
	if isolatable(err) && ctx.Err() == nil {
		return nil, err
	}
	rs = make([]result, len(bt.items))
	for i := range rs {
		rs[i].err = err
	}
	return rs, nil
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
			resp, err = nil, b.panicked(r)
		}
	}()
	return b.next.Predict(ctx, req)
}

// panicked logs a model's panic, r, with its stack, and returns the error
// its caller gets.
func (b *Batcher) panicked(r any) error {
	slog.Error("batch: model panicked", "model", b.md.Name, "version", b.md.Version,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return serving.Errorf(serving.Internal, "batch: model %q failed with an internal error", b.md.Name)
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

package batch

import (
	"context"
	"math"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// batch is a dispatched group of items and the run that answers them.
type batch struct {
	items  []*item
	rows   int64
	live   int // guarded by Batcher.mu: members still waiting
	cancel context.CancelFunc
}

// loop is the scheduler: it dispatches ready batches and sleeps until a
// request arrives, a run ends, or the next max-delay deadline. It exits once
// the Batcher is closed and nothing is queued or running.
func (b *Batcher) loop() {
	defer close(b.done)
	for {
		b.mu.Lock()
		wakeAt, exit := b.dispatchLocked()
		b.mu.Unlock()
		if exit {
			return
		}
		var tc <-chan time.Time
		var t timer
		if !wakeAt.IsZero() {
			t = b.cfg.clock.NewTimer(wakeAt.Sub(b.cfg.clock.Now()))
			tc = t.C()
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
	for b.inflight < b.cfg.maxFlight {
		q := b.pickLocked(now)
		if q == nil {
			break
		}
		ctx, bt := b.startLocked(q, now)
		b.runs.Add(1)
		go b.run(ctx, bt)
	}
	if b.closed && len(b.queues) == 0 && b.inflight == 0 {
		return time.Time{}, true
	}
	if b.inflight >= b.cfg.maxFlight {
		return time.Time{}, false // a finishing run wakes us
	}
	for _, q := range b.queues {
		if d := q.oldest().Add(b.cfg.maxDelay); d.After(now) && (wakeAt.IsZero() || d.Before(wakeAt)) {
			wakeAt = d
		}
	}
	return wakeAt, false
}

// pickLocked returns the ready queue whose head has the highest priority
// (the oldest among equals), or nil.
func (b *Batcher) pickLocked(now time.Time) *queue {
	var best *queue
	for _, q := range b.queues {
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
		// (the running batch's end picks it up) unless it is full.
		return b.inflight == 0 && q.rows >= b.ewma.target(b.cfg.maxRows)
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
		return rows >= b.ewma.target(b.cfg.maxRows)
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
		delete(b.queues, q.key)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bt := &batch{items: items, live: len(items), cancel: cancel}
	for _, it := range items {
		it.state, it.batch = running, bt
		bt.rows += it.rows
		wait := now.Sub(it.enq)
		b.stats.QueueTime += wait
		b.tel.queued(wait)
		if it.span != nil {
			it.span.End()
		}
	}
	b.queued -= bt.rows
	b.tel.depth(context.Background(), -bt.rows)
	b.inflight++
	b.running[bt] = struct{}{}
	return ctx, bt
}

// run answers a batch, then, rather than hand its slot back to the
// scheduler, takes the next ready batch itself: under load that saves a
// goroutine hand-off per batch.
func (b *Batcher) run(ctx context.Context, bt *batch) {
	defer b.runs.Done()
	for bt != nil {
		ctx, bt = b.runOne(ctx, bt)
	}
	b.nudge()
}

func (b *Batcher) runOne(ctx context.Context, bt *batch) (context.Context, *batch) {
	start := b.cfg.clock.Now()
	if first := bt.items[0].parent; first.IsValid() {
		// batch.run continues the first member's trace and links them all.
		links := make([]trace.Link, 0, len(bt.items))
		for _, it := range bt.items {
			if it.parent.IsValid() {
				links = append(links, trace.Link{SpanContext: it.parent})
			}
		}
		var span trace.Span
		ctx, span = b.tel.tracer.Start(trace.ContextWithSpanContext(ctx, first), "batch.run",
			b.tel.spanAttrs, trace.WithLinks(links...))
		defer span.End()
	}
	isolated := b.answer(ctx, bt)
	bt.cancel()

	now := b.cfg.clock.Now()
	elapsed := now.Sub(start)
	b.tel.ran(elapsed, bt.rows, len(bt.items))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight--
	delete(b.running, bt)
	b.ranLocked(elapsed, bt.rows, len(bt.items), isolated)
	if q := b.pickLocked(now); q != nil && !b.closedNoDrainLocked() {
		return b.startLocked(q, now)
	}
	return nil, nil
}

// closedNoDrainLocked: after Close the scheduler decides what is left.
func (b *Batcher) closedNoDrainLocked() bool { return b.closed && !b.draining }

func (b *Batcher) ranLocked(elapsed time.Duration, rows int64, reqs int, isolated int64) {
	b.ewma.ran(elapsed)
	s := &b.stats
	s.Batches++
	s.Requests += int64(reqs)
	s.Rows += rows
	s.RunTime += elapsed
	s.RowsPerBatch[bucket(rows)]++
	s.Isolations += isolated
}

// answer runs the batch and delivers each member its answer. If a joined
// run fails with an error that could be one member's fault, every member
// is run alone so that only the culprit fails; it returns 1 then.
func (b *Batcher) answer(ctx context.Context, bt *batch) (isolated int64) {
	if len(bt.items) == 1 {
		it := bt.items[0]
		resp, err := b.predict(ctx, it.req)
		it.res <- result{resp, err}
		return 0
	}
	var err error
	if joined, jerr := join(bt.items); jerr != nil {
		err = jerr
	} else if resp, perr := b.predict(ctx, joined); perr != nil {
		err = perr
	} else if parts, serr := splitResponse(resp, bt.items, bt.rows); serr != nil {
		err = serr
	} else {
		for k, it := range bt.items {
			it.res <- result{resp: parts[k]}
		}
		return 0
	}
	if !isolatable(err) || ctx.Err() != nil {
		for _, it := range bt.items {
			it.res <- result{err: err}
		}
		return 0
	}
	for _, it := range bt.items {
		if b.gone(it) {
			it.res <- result{err: err}
			continue
		}
		resp, err := b.predict(ctx, it.req)
		it.res <- result{resp, err}
	}
	return 1
}

// predict calls the model, turning a panic into an Internal error.
func (b *Batcher) predict(ctx context.Context, req *serving.Request) (resp *serving.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, serving.Errorf(serving.Internal, "batch: model %q panicked: %v", b.md.Name, r)
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

// estimator keeps exponentially weighted means of the gap between arriving
// rows and of the run time of a batch, for the adaptive wait and the
// Retry-After estimate. Guarded by Batcher.mu.
type estimator struct {
	prevLast time.Time // before the last arrived, for unarrive
	prevGap  float64
	last     time.Time
	gap      float64 // ns between rows
	runDur   float64 // ns per batch run
}

const (
	gapAlpha = 0.05 // arrivals are bursty: average over ~20 of them
	runAlpha = 0.2
	maxGap   = float64(time.Second) // an idle spell counts as one long gap
)

func (e *estimator) arrived(now time.Time, rows int64) {
	e.prevLast, e.prevGap = e.last, e.gap
	if e.last.IsZero() {
		e.last = now
		e.gap = maxGap
		return
	}
	g := min(float64(now.Sub(e.last)), maxGap) / float64(rows)
	e.last = now
	e.gap += gapAlpha * (g - e.gap)
}

// unarrive undoes the last arrived: direct calls it when it declines, so
// that enqueue can count the arrival once.
func (e *estimator) unarrive() { e.last, e.gap = e.prevLast, e.prevGap }

func (e *estimator) ran(d time.Duration) {
	if e.runDur == 0 {
		e.runDur = float64(d)
		return
	}
	e.runDur += runAlpha * (float64(d) - e.runDur)
}

func (e *estimator) run() time.Duration { return time.Duration(e.runDur) }

// target is the rows expected to arrive during one batch run, at least 1:
// waiting for more would delay the oldest request longer than running now
// and letting the rest form the next batch while this one runs.
func (e *estimator) target(maxRows int64) int64 {
	if e.gap <= 0 || e.runDur == 0 {
		return 1
	}
	t := math.Floor(e.runDur / e.gap)
	return int64(min(max(t, 1), float64(maxRows)))
}

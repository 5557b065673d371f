package batch

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// ErrNotBatchable is wrapped by New when the model does not describe itself
// or does not batch on dimension 0 (serving.Metadata.Batchable).
var ErrNotBatchable = serving.Errorf(serving.InvalidArgument, "batch: model does not batch on dimension 0")

// Batcher queues requests for one model and runs them together along
// dimension 0. It is safe for concurrent use. Build it with New; stop it
// with Close or Shutdown.
type Batcher struct {
	next serving.Predictor
	md   serving.Metadata
	cfg  config
	tel  *telemetry

	wake chan struct{} // cap 1: nudges the scheduler
	done chan struct{} // closed when the scheduler has exited
	runs sync.WaitGroup

	mu       sync.Mutex
	queues   map[string]*queue // guarded by mu; only non-empty queues
	queued   int64             // guarded by mu: rows waiting
	inflight int               // guarded by mu: batches running
	running  map[*batch]struct{}
	closed   bool // guarded by mu: no new requests
	draining bool // guarded by mu: Shutdown: dispatch without waiting
	ewma     estimator
	stats    Stats // guarded by mu
}

var (
	_ serving.Predictor = (*Batcher)(nil)
	_ serving.Wrapper   = (*Batcher)(nil)
	_ serving.Readier   = (*Batcher)(nil)
)

// New returns a Batcher in front of next. It fails with an error wrapping
// ErrNotBatchable when next's metadata (serving.MetadataOf) is missing or not
// batchable, and with InvalidArgument for invalid options. It starts one
// scheduler goroutine, stopped by Close or Shutdown.
func New(next serving.Predictor, opts ...Option) (*Batcher, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	md, ok := serving.MetadataOf(next)
	if !ok {
		return nil, serving.Errorf(serving.InvalidArgument, "batch: the model has no metadata: %w", ErrNotBatchable)
	}
	if !md.Batchable() {
		return nil, serving.Errorf(serving.InvalidArgument, "batch: model %q: %w", md.Name, ErrNotBatchable)
	}
	tel, err := newTelemetry(cfg, md)
	if err != nil {
		return nil, err
	}
	b := &Batcher{
		next:    next,
		md:      md,
		cfg:     cfg,
		tel:     tel,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		queues:  make(map[string]*queue),
		running: make(map[*batch]struct{}),
	}
	go b.loop()
	return b, nil
}

// Middleware returns New as a serving.Middleware. A Middleware cannot fail,
// so: a model that is not batchable (or has no metadata) is passed through
// unchanged, and invalid options give a Predictor whose every Predict fails
// with the options error (InvalidArgument), so the mistake shows on the first
// request rather than being ignored.
func Middleware(opts ...Option) serving.Middleware {
	return func(next serving.Predictor) serving.Predictor {
		b, err := New(next, opts...)
		switch {
		case errors.Is(err, ErrNotBatchable):
			return next
		case err != nil:
			return broken{next: next, err: err}
		}
		return b
	}
}

// Unwrap implements serving.Wrapper.
func (b *Batcher) Unwrap() serving.Predictor { return b.next }

// Ready implements serving.Readier: false once Close or Shutdown began.
func (b *Batcher) Ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.closed
}

// Predict queues req, waits for the batch it joins and returns its rows of
// the answer. It returns at once when ctx ends, whatever its batch is doing.
func (b *Batcher) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if err := serving.ContextError(ctx, "batch: predict"); err != nil {
		b.countRejected(reasonOf(ctx))
		return nil, err
	}
	if d, ok := req.Params.Timeout(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	rows := req.Rows()
	if rows > 0 && rows <= b.cfg.maxRows {
		// Alone, the request is the model's to validate, as unbatched.
		if resp, err, ok := b.direct(ctx, req, rows); ok {
			return resp, err
		}
	}
	// Joined, one bad request would fail its neighbours: check it first.
	if err := b.md.Validate(req); err != nil {
		return nil, err
	}
	rows = req.Rows()
	if rows == 0 {
		// Nothing to join: an empty request costs the model nothing to batch.
		if !b.Ready() {
			return nil, serving.ErrClosed
		}
		return b.next.Predict(ctx, req)
	}
	items, err := b.enqueue(ctx, req, rows)
	if err != nil {
		return nil, err
	}
	if len(items) == 1 {
		return b.wait(ctx, items[0])
	}
	return b.waitChunks(ctx, req, items)
}

// direct runs a request in the caller's goroutine, with the caller's ctx,
// when it would be dispatched alone at once anyway: nothing is queued, a
// run slot is free and the dispatch rule needs no company (adaptive at low
// load, or a zero max delay). This is the low-load path: it costs no
// goroutine hand-off, so a lone request pays almost nothing for batching.
func (b *Batcher) direct(ctx context.Context, req *serving.Request, rows int64) (*serving.Response, error, bool) {
	b.mu.Lock()
	if b.closed || b.queued > 0 || b.inflight > 0 {
		b.mu.Unlock()
		return nil, nil, false
	}
	now := b.cfg.clock.Now()
	b.ewma.arrived(now, rows)
	if !b.aloneReadyLocked(rows) {
		b.ewma.unarrive()
		b.mu.Unlock()
		return nil, nil, false
	}
	// Shutdown may have to cancel it, as it cancels running batches. A ctx
	// that can never end is left alone: wrapping it would make the backend
	// prepare for cancellation on every call (ORT run options), which is
	// most of what a lone request would pay for batching.
	var bt *batch
	if ctx.Done() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		bt = &batch{cancel: cancel}
		b.running[bt] = struct{}{}
	}
	b.inflight++
	b.mu.Unlock()

	b.tel.queued(0)
	resp, err := b.predict(ctx, req)
	elapsed := b.cfg.clock.Now().Sub(now)
	b.tel.ran(elapsed, rows, 1)
	b.mu.Lock()
	b.inflight--
	if bt != nil {
		delete(b.running, bt)
	}
	b.ranLocked(elapsed, rows, 1, 0)
	waiting := b.queued > 0 || b.closed
	b.mu.Unlock()
	if waiting {
		b.nudge() // a slot is free again
	}
	return resp, err, true
}

func endSpan(s trace.Span) {
	if s != nil {
		s.End()
	}
}

// wait blocks until it is answered or ctx ends.
func (b *Batcher) wait(ctx context.Context, it *item) (*serving.Response, error) {
	select {
	case r := <-it.res:
		return r.resp, r.err
	case <-ctx.Done():
		b.abandon(it, reasonOf(ctx))
		return nil, serving.ContextError(ctx, "batch: predict")
	}
}

// waitChunks gathers the answers of an oversize request's chunks in order.
func (b *Batcher) waitChunks(ctx context.Context, req *serving.Request, items []*item) (*serving.Response, error) {
	resps := make([]*serving.Response, len(items))
	for i, it := range items {
		resp, err := b.wait(ctx, it)
		if err != nil {
			for _, rest := range items[i+1:] {
				b.abandon(rest, reasonOf(ctx))
			}
			return nil, err
		}
		resps[i] = resp
	}
	return concatResponses(req, resps)
}

func reasonOf(ctx context.Context) reason {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return reasonDeadline
	}
	return reasonCanceled
}

// enqueue admits req (split into chunks of at most the max batch rows) or
// rejects it whole: closed, or the queue bound would be passed.
func (b *Batcher) enqueue(ctx context.Context, req *serving.Request, rows int64) ([]*item, error) {
	chunks, err := split(req, rows, b.cfg.maxRows)
	if err != nil {
		return nil, err
	}
	key := batchKey(req)
	level := b.level(req)
	// Spans only under a recording parent: a request nobody traces pays
	// nothing for them.
	var parent trace.SpanContext
	var span trace.Span
	if ps := trace.SpanFromContext(ctx); ps.IsRecording() {
		parent = ps.SpanContext()
		_, span = b.tel.tracer.Start(ctx, "batch.queue", b.tel.spanAttrs)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		b.stats.Rejected.Closed++
		b.tel.rejected(ctx, reasonClosed)
		endSpan(span)
		return nil, serving.ErrClosed
	}
	// An oversize request is let into an empty queue, so that no size is
	// refused for ever.
	if b.queued+rows > b.cfg.queueRows && b.queued > 0 {
		b.stats.Rejected.Overloaded++
		b.tel.rejected(ctx, reasonOverloaded)
		endSpan(span)
		e := serving.Errorf(serving.ResourceExhausted, "batch: model %q: queue full (%d of %d rows): %w",
			b.md.Name, b.queued, b.cfg.queueRows, serving.ErrOverloaded)
		e.RetryAfter = b.retryAfterLocked()
		return nil, e
	}
	now := b.cfg.clock.Now()
	b.ewma.arrived(now, rows)
	q := b.queues[key]
	fresh := q == nil
	if fresh {
		q = newQueue(key, b.cfg.levels)
		b.queues[key] = q
	}
	items := make([]*item, len(chunks))
	for i, c := range chunks {
		it := &item{req: c, rows: c.Rows(), level: level, key: key, enq: now,
			res: make(chan result, 1), span: span, parent: parent}
		if i > 0 {
			it.span = nil // one queue span per caller, ended with its first chunk
		}
		q.push(it)
		items[i] = it
	}
	b.queued += rows
	b.tel.depth(ctx, rows)
	// Wake the scheduler only when it has something to do: a new deadline
	// to sleep until, or a batch to start. Under load a slot is busy and the
	// batch that ends takes the queue, so arrivals cost no hand-off.
	if fresh || (b.inflight < b.cfg.maxFlight && b.readyLocked(q, now)) {
		b.nudge()
	}
	return items, nil
}

// level maps serving.ParamPriority to a level index (0 = highest): 0 or
// absent is the default level; beyond the levels is the lowest.
func (b *Batcher) level(req *serving.Request) int {
	p, ok := req.Params.Int(serving.ParamPriority)
	if !ok || p <= 0 {
		p = int64(b.cfg.defLevel)
	}
	return int(min(p, int64(b.cfg.levels))) - 1
}

// abandon is called when a caller leaves: a queued item is dropped, a
// running one stops counting toward its batch (the batch's run is cancelled
// when nobody is left to answer).
func (b *Batcher) abandon(it *item, why reason) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch it.state {
	case queued:
		q := b.queues[it.key]
		q.remove(it)
		if q.empty() {
			delete(b.queues, it.key)
		}
		b.queued -= it.rows
		b.tel.depth(context.Background(), -it.rows)
		b.stats.Rejected.add(why)
		b.tel.rejected(context.Background(), why)
		it.state = left
		if it.span != nil {
			it.span.End()
		}
		b.nudge() // the oldest may have changed, and with it the next deadline
	case running:
		it.state = left
		it.batch.live--
		if it.batch.live == 0 {
			it.batch.cancel()
		}
	}
}

func (b *Batcher) countRejected(why reason) {
	b.mu.Lock()
	b.stats.Rejected.add(why)
	b.mu.Unlock()
	b.tel.rejected(context.Background(), why)
}

func (b *Batcher) nudge() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// retryAfterLocked estimates when the queue will have room: the batches
// needed to drain it, spread over the run slots, times the recent run time.
func (b *Batcher) retryAfterLocked() time.Duration {
	run := b.ewma.run()
	if run <= 0 {
		run = max(b.cfg.maxDelay, time.Millisecond)
	}
	batches := (b.queued + b.cfg.maxRows - 1) / b.cfg.maxRows
	rounds := (batches + int64(b.cfg.maxFlight) - 1) / int64(b.cfg.maxFlight)
	return max(time.Duration(rounds)*run, time.Millisecond)
}

// Close stops accepting requests, fails the queued ones with
// serving.ErrClosed, waits for running batches to answer their callers and
// stops the scheduler. It is idempotent and does not close the wrapped
// Predictor (serving.Close walks the chain).
func (b *Batcher) Close() error {
	b.mu.Lock()
	b.closed = true
	b.failQueuedLocked(serving.ErrClosed)
	b.mu.Unlock()
	b.nudge()
	<-b.done
	b.runs.Wait()
	return nil
}

// Shutdown stops accepting requests, runs everything queued without waiting
// for the max delay, and returns when every caller has its answer. If ctx
// ends first, it fails what is still queued with serving.ErrClosed, cancels
// the running batches and returns ctx's error; Close then waits for them.
func (b *Batcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed, b.draining = true, true
	b.mu.Unlock()
	b.nudge()
	finished := make(chan struct{})
	go func() {
		<-b.done
		b.runs.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		b.failQueuedLocked(serving.ErrClosed)
		for bt := range b.running {
			bt.cancel()
		}
		b.mu.Unlock()
		b.nudge()
		return serving.ContextError(ctx, "batch: shutdown")
	}
}

func (b *Batcher) failQueuedLocked(err error) {
	for key, q := range b.queues {
		for _, it := range q.all() {
			it.state = done
			it.res <- result{err: err}
			if it.span != nil {
				it.span.End()
			}
			b.stats.Rejected.Closed++
			b.tel.rejected(context.Background(), reasonClosed)
		}
		b.tel.depth(context.Background(), -q.rows)
		b.queued -= q.rows
		delete(b.queues, key)
	}
}

// broken is what Middleware returns for invalid options.
type broken struct {
	next serving.Predictor
	err  error
}

func (p broken) Predict(context.Context, *serving.Request) (*serving.Response, error) {
	return nil, p.err
}

func (p broken) Unwrap() serving.Predictor { return p.next }

package batch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/internal/broken"
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
	work chan job      // cap max in flight: dispatched batches for the runners
	runs sync.WaitGroup

	// pending counts the callers on their way: inside Predict and neither
	// queued nor running, that is arriving, or answered and not yet gone.
	// In adaptive mode a batch waits for them (see readyLocked). stalled
	// is set, before pending is read, by a dispatch that declined because
	// of them, so that the caller who brings pending to 0 dispatches.
	pending atomic.Int64
	stalled atomic.Bool

	// fast is the lone request's fast path's word (fast.go): whether a
	// fast run holds the run slot, whether the batcher is busy, and the
	// lone runs started.
	fast atomic.Uint64

	// loose is the word of the runs alone without the lock (loose.go).
	loose atomic.Uint64

	// sendNs is the time the last joined batch took to hand out its
	// answers, per row: the runner measures it after it lets go of mu, and
	// the next joined batch adds it to its cost.
	sendNs atomic.Int64

	mu          sync.Mutex
	queues      map[uint64]*queue   // guarded by mu; non-empty queues by key hash, chained
	order       []*queue            // guarded by mu: the same queues, to iterate
	spare       *queue              // guarded by mu: an emptied queue, for reuse
	retry       []*group            // guarded by mu: halves of split batches, to run before the queues
	suspects    group               // guarded by mu: suspects waiting to run alone (soloLocked)
	solos       int                 // guarded by mu: suspects running alone
	timerAt     time.Time           // guarded by mu: the scheduler's next wake-up; zero: none
	queued      int64               // guarded by mu: rows waiting
	inflight    int                 // guarded by mu: runs holding a run slot
	active      int                 // guarded by mu: runs going on, in a slot or not
	runGen      uint64              // guarded by mu: runs started
	running     map[*batch]struct{} // guarded by mu: the runs the scheduler watches (limits, Shutdown)
	lone        loneRun             // guarded by mu
	busy        bool                // guarded by mu: fastBusy as set in fast
	loneLocked  uint64              // guarded by mu: lone runs of the locked path, counted in fast's generation
	fastCounted int64               // guarded by mu: fast runs the cost model has counted
	fastWatch   fastWatch           // guarded by mu
	looseOn     bool                // guarded by mu: looseOpen as set in loose
	aloneLocked uint64              // guarded by mu: runs alone of the locked path, counted in loose
	closed      bool                // guarded by mu: no new requests
	nextClosed  bool                // guarded by mu: Close has begun closing next
	draining    bool                // guarded by mu: Shutdown: dispatch without waiting
	gathering   bool                // guarded by mu: a caller gathers company (see gather); the queues wait
	runEWMA     estimator           // guarded by mu
	cost        costModel           // guarded by mu
	stats       Stats               // guarded by mu
}

var (
	_ serving.Predictor = (*Batcher)(nil)
	_ serving.Wrapper   = (*Batcher)(nil)
	_ serving.Readier   = (*Batcher)(nil)
)

// New returns a Batcher in front of next. It fails with an error wrapping
// ErrNotBatchable when next's metadata (serving.MetadataOf) is missing or not
// batchable, and with InvalidArgument for invalid options. It starts one
// scheduler goroutine and one runner goroutine per run slot
// (WithMaxInFlight), stopped by Close or Shutdown.
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
		work:    make(chan job, cfg.maxFlight),
		queues:  make(map[uint64]*queue),
		running: make(map[*batch]struct{}),
		cost:    newCostModel(),
		busy:    true, // until syncLocked sees that a lone request may run at once
	}
	b.fast.Store(fastBusy)
	if err := tel.observe(cfg.meters, func() (int64, int64) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.queued, b.untimedLocked()
	}); err != nil {
		return nil, err
	}
	// Runners live as long as the batcher: a goroutine started per batch
	// cost more (its stack grew on every start) than handing it a batch.
	b.runs.Add(cfg.maxFlight)
	for range cfg.maxFlight {
		go b.runner()
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
			return broken.New(next, err)
		}
		return b
	}
}

// Unwrap implements serving.Wrapper.
func (b *Batcher) Unwrap() serving.Predictor { return b.next }

// Ready implements serving.Readier: false once Close or Shutdown began.
func (b *Batcher) Ready() bool {
	b.mu.Lock()
	defer b.unlock()
	return !b.closed
}

// Predict queues req, waits for the batch it joins and returns its rows of
// the answer. It returns at once when ctx ends, whatever its batch is doing.
func (b *Batcher) Predict(ctx context.Context, req *serving.Request) (resp *serving.Response, err error) {
	// The fast path (fast.go), under any ctx: one that can never end has
	// no error to check, one that can (an HTTP request's) is checked once,
	// so that a request whose ctx has ended is counted as rejected by
	// predictQueued. No serving.ParamTimeout, which would give the run a
	// limit of its own. A fast run is not cancelled at its limit nor on
	// Shutdown: ctx is the caller's, which ends it as it would end an
	// unbatched call (see Performance in the package doc). It runs from
	// this frame, not a function of its own: after a model's run, each
	// frame still to return through is cold in the caches and costs 10–20
	// ns, 1 % of the fraud model's run (BenchmarkLonePaired).
	if req.Rows() == 1 && b.cfg.loneAtOnce && len(req.Params) == 0 {
		done := ctx.Done()
		if done == nil || ctx.Err() == nil {
			if held, ok := b.takeFast(); ok {
				if b.cfg.hook != nil {
					b.cfg.hook(1)
				}
				defer func() {
					if r := recover(); r != nil {
						resp, err = b.fastDone(ctx, nil, b.panicked(r), held)
					}
				}()
				resp, err = b.next.Predict(ctx, req)
				if b.fast.CompareAndSwap(held, held&^fastHeld) {
					b.hookDone()
					return resp, err
				}
				return b.fastDone(ctx, resp, err, held)
			}
		}
		if b.cfg.adaptive && done == nil {
			if resp, err, ok := b.tryLoose(ctx, req); ok {
				return resp, err
			}
		}
	}
	return b.predictQueued(ctx, req)
}

// predictQueued is Predict for a request that no lock-free path took: it
// runs alone directly, gathers company or queues. Apart from Predict, so
// that the fast path's frame holds none of its locals and defers (16
// instructions a request under callgrind, BenchmarkLoneOverhead).
func (b *Batcher) predictQueued(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	rows := req.Rows()
	if err := serving.ContextError(ctx, "batch: predict"); err != nil {
		b.countRejected(reasonOf(ctx))
		return nil, err
	}
	if d, ok := req.Params.Timeout(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	b.pending.Add(1) // on its way, until queued, run directly or gone
	gather := false
	if rows > 0 && rows <= b.cfg.maxRows {
		// Alone, the request is the model's to validate, as unbatched.
		var resp *serving.Response
		var err error
		var ran bool
		if resp, err, ran, gather = b.direct(ctx, req, rows); ran {
			return resp, err
		}
	}
	// Joined, one bad request would fail its neighbours: check it first.
	if err := b.md.Validate(req); err != nil {
		b.leave()
		return nil, err
	}
	rows = req.Rows()
	if rows == 0 {
		b.leave()
		// Nothing to join: an empty request costs the model nothing to batch.
		if !b.Ready() {
			return nil, serving.ErrClosed
		}
		return b.next.Predict(ctx, req)
	}
	var oneReq [1]*serving.Request
	var oneItem [1]*item
	chunks, items := oneReq[:], oneItem[:]
	if rows > b.cfg.maxRows {
		var err error
		if chunks, err = split(req, rows, b.cfg.maxRows); err != nil {
			b.leave()
			return nil, err
		}
		items = make([]*item, len(chunks))
	} else {
		chunks[0] = req
	}
	gathering, err := b.enqueue(ctx, chunks, items, rows, gather)
	if err != nil {
		return nil, err
	}
	if gathering {
		b.gather(items[0])
	}
	if len(items) == 1 {
		return b.wait(ctx, items[0])
	}
	return b.waitChunks(ctx, req, items)
}

// leave takes a caller off pending; if a dispatch waited for it, it wakes
// the scheduler to dispatch. Not inline: the last caller answered by a
// batch is usually the one that brings pending to 0, and in a closed loop
// it is about to come back. The scheduler is readied on this caller's P,
// so it runs once the caller has queued again (and so joins the batch) or
// has gone on to other work.
func (b *Batcher) leave() {
	if b.pending.Add(-1) <= 0 && b.stalled.Load() {
		b.nudge()
	}
}

// received finishes a wait that got its answer.
func (b *Batcher) received(it *item, r result) (*serving.Response, error) {
	// counted was written under mu before the send: the receive orders it.
	if it.counted {
		b.leave()
	}
	if !it.kept { // written under mu before the send, like counted
		it.free()
	}
	return r.resp, r.err
}

func endSpan(s trace.Span) {
	if s != nil {
		s.End()
	}
}

// wait blocks until it is answered or ctx ends. An answered item goes back
// to the pool.
func (b *Batcher) wait(ctx context.Context, it *item) (*serving.Response, error) {
	done := ctx.Done()
	if done == nil { // a ctx that cannot end: a plain receive costs less than a select
		return b.received(it, <-it.res)
	}
	select {
	case r := <-it.res:
		return b.received(it, r)
	case <-done:
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

// enqueue admits a request, as chunks of at most the max batch rows, into
// items (one per chunk), or rejects it whole: closed, or the queue bound
// would be passed. If that makes a batch ready, it starts it.
//
// With gather set, a request that finds the queue still empty gathers
// company instead: the queue is held back until it calls gather, and
// enqueue reports that it does.
func (b *Batcher) enqueue(ctx context.Context, chunks []*serving.Request, items []*item, rows int64, gather bool) (bool, error) {
	req := chunks[0]
	hash := keyHash(req)
	level := b.level(req)
	// Spans only under a recording parent: a request nobody traces pays
	// nothing for them.
	var parent trace.SpanContext
	var span trace.Span
	if ps := trace.SpanFromContext(ctx); ps.IsRecording() {
		parent = ps.SpanContext()
		_, span = b.tel.tracer.Start(ctx, "batch.queue", b.tel.spanAttrs)
	}

	timing := serving.TimingOf(ctx)

	b.mu.Lock()
	defer b.unlock()
	if b.closed {
		b.stats.Rejected.Closed++
		b.tel.rejected(ctx, reasonClosed)
		endSpan(span)
		b.leaveLocked()
		return false, serving.ErrClosed
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
		b.leaveLocked()
		return false, e
	}
	now := b.cfg.clock.Now()
	limit, _ := ctx.Deadline() // none: set at the first run (limitLocked)
	q := b.queueLocked(hash, req)
	for i, c := range chunks {
		it := newItem()
		it.req, it.rows, it.level, it.enq, it.parent, it.timing, it.limit = c, c.Rows(), level, now, parent, timing, limit
		it.last = i == len(chunks)-1
		if i == 0 {
			it.span = span // one queue span per caller, ended with its first chunk
		}
		q.push(it)
		items[i] = it
	}
	gathering := gather && b.queued == 0 && b.slotsLocked() == 0 && !b.gathering
	b.queued += rows
	b.syncLocked()    // no fast run may start before what is queued, and before pending drops (fast.go)
	b.pending.Add(-1) // queued: no longer on its way
	if gathering {
		b.gathering = true
		b.watchLocked(now) // the max delay still bounds the wait
		return true, nil
	}
	// Dispatch here rather than wake the scheduler: under load a slot is
	// busy and the batch that ends takes the queue, and otherwise the
	// caller that completes a batch starts it, so arrivals cost no hand-off.
	b.startReadyLocked(now)
	b.watchLocked(now)
	return false, nil
}

// leaveLocked is leave for a caller that holds mu.
func (b *Batcher) leaveLocked() {
	if b.pending.Add(-1) <= 0 && b.stalled.Load() {
		b.startReadyLocked(b.cfg.clock.Now())
	}
}

// queueLocked returns the queue of req's batch key, creating it if needed.
func (b *Batcher) queueLocked(hash uint64, req *serving.Request) *queue {
	for q := b.queues[hash]; q != nil; q = q.next {
		if sameKey(q.head().req, req) {
			return q
		}
	}
	q := b.spare
	if q == nil {
		q = newQueue(hash, b.cfg.levels)
	}
	b.spare = nil
	q.hash, q.next = hash, b.queues[hash]
	b.queues[hash] = q
	b.order = append(b.order, q)
	return q
}

// dropLocked forgets an emptied queue.
func (b *Batcher) dropLocked(q *queue) {
	if p := b.queues[q.hash]; p == q {
		if q.next == nil {
			delete(b.queues, q.hash)
		} else {
			b.queues[q.hash] = q.next
		}
	} else {
		for ; p != nil; p = p.next {
			if p.next == q {
				p.next = q.next
				break
			}
		}
	}
	if i := slices.Index(b.order, q); i >= 0 {
		b.order = slices.Delete(b.order, i, i+1)
	}
	q.next, q.rows = nil, 0
	for i, l := range q.levels {
		q.levels[i] = l[:0]
	}
	b.spare = q
}

// watchLocked wakes the scheduler when something waits for a free run
// slot and the scheduler's timer (if any) would fire after its max delay;
// and once closed, so that it can exit. While every slot is busy, a run
// that ends takes what waits, so there is nothing to time.
func (b *Batcher) watchLocked(now time.Time) {
	if b.closed || (b.queued > 0 && b.slotsLocked() < b.cfg.maxFlight &&
		(b.timerAt.IsZero() || now.Add(b.cfg.maxDelay).Before(b.timerAt))) {
		b.nudge()
	}
	if b.queued > 0 {
		b.watchFastLocked(now)
	}
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
	defer b.unlock()
	switch it.state {
	case queued:
		q := it.q
		q.remove(it)
		if q.empty() {
			b.dropLocked(q)
		}
		b.queued -= it.rows
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
	case retrying:
		b.leaveGroupLocked(it)
		it.state = left
	case done:
		if it.counted { // answered as it left: it is gone all the same
			it.counted = false
			b.leaveLocked()
		}
	}
}

func (b *Batcher) countRejected(why reason) {
	b.mu.Lock()
	b.stats.Rejected.add(why)
	b.unlock()
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
	run := b.runEWMA.run()
	if run <= 0 {
		run = max(b.cfg.maxDelay, time.Millisecond)
	}
	batches := (b.queued + b.cfg.maxRows - 1) / b.cfg.maxRows
	rounds := (batches + int64(b.cfg.maxFlight) - 1) / int64(b.cfg.maxFlight)
	return max(time.Duration(rounds)*run, time.Millisecond)
}

// Close stops accepting requests, fails the queued ones with
// serving.ErrClosed, waits for running batches to answer their callers,
// stops the scheduler, then closes the wrapped Predictor, which the
// Batcher owns (serving.Middleware). It is idempotent: later calls return
// nil.
func (b *Batcher) Close() error {
	b.mu.Lock()
	first := !b.nextClosed
	b.closed, b.nextClosed = true, true
	b.failQueuedLocked(serving.ErrClosed)
	b.unlock()
	b.nudge()
	<-b.done
	b.runs.Wait()
	if !first {
		return nil
	}
	return serving.Close(b.next)
}

// Shutdown stops accepting requests, runs everything queued without waiting
// for the max delay, and returns when every caller has its answer. If ctx
// ends first, it fails what is still queued with serving.ErrClosed, cancels
// the running batches and returns ctx's error; Close then waits for them.
// It leaves the wrapped Predictor open: Close, called after it, closes that.
func (b *Batcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed, b.draining = true, true
	b.unlock()
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
			if bt.cancel != nil {
				bt.cancel()
			}
		}
		if b.lone.on && b.lone.cancel != nil {
			b.lone.cancel()
		}
		b.unlock()
		b.nudge()
		return serving.ContextError(ctx, "batch: shutdown")
	}
}

func (b *Batcher) failQueuedLocked(err error) {
	b.gathering = false
	for _, g := range append(b.retry, &b.suspects) {
		for _, it := range g.items {
			it.state, it.grp = done, nil
			it.res <- result{err: err} // last: the caller may reuse it at once
			b.stats.Rejected.Closed++
			b.tel.rejected(context.Background(), reasonClosed)
		}
	}
	b.retry, b.suspects = nil, group{}
	for _, q := range slices.Clone(b.order) {
		for _, it := range q.all() {
			it.state = done
			if it.span != nil {
				it.span.End()
			}
			it.res <- result{err: err} // last: the caller may reuse it at once
			b.stats.Rejected.Closed++
			b.tel.rejected(context.Background(), reasonClosed)
		}
		b.queued -= q.rows
		b.dropLocked(q)
	}
}

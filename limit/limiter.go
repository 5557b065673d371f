package limit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/servekit/servekit/internal/broken"
	"github.com/servekit/servekit/serving"
)

// Limiter bounds the requests running in the Predictor it wraps, queues a
// few more, and rejects the rest at once with a ResourceExhausted error
// that carries a Retry-After estimate. Build it with New or Middleware; it
// is safe for concurrent use.
type Limiter struct {
	next serving.Predictor
	cfg  config
	tel  *telemetry

	mu       sync.Mutex
	inflight int           // slots taken; guarded by mu
	queue    waiters       // FIFO of requests waiting for a slot; guarded by mu
	mean     time.Duration // EWMA of the time a request holds a slot; guarded by mu
	stats    Stats         // guarded by mu
	closed   bool          // guarded by mu
	done     chan struct{} // closed by Close: wakes the queued
}

var (
	_ serving.Predictor = (*Limiter)(nil)
	_ serving.Wrapper   = (*Limiter)(nil)
)

// Stats is a snapshot of a Limiter's counters.
type Stats struct {
	Admitted int64 // requests that got a slot
	Queued   int64 // of those, the ones that waited for it
	InFlight int   // slots taken now
	Waiting  int   // requests queued now
	Rejected Rejections
}

// Rejections counts requests that never got a slot, by reason.
type Rejections struct {
	Full     int64 // every slot taken and the queue full
	Wait     int64 // the (estimated) wait passed WithMaxWait
	Deadline int64 // the estimated wait passed the request's deadline
	Canceled int64 // the caller's context ended while queued
	Closed   int64 // the Limiter was closed
}

// New wraps next. It fails with an InvalidArgument error for invalid options,
// or an Internal one when the meter provider refuses an instrument.
func New(next serving.Predictor, opts ...Option) (*Limiter, error) {
	cfg := newConfig(opts)
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "limit: %w", err)
	}
	md, _ := serving.MetadataOf(next)
	l := &Limiter{next: next, cfg: cfg, done: make(chan struct{})}
	tel, err := newTelemetry(cfg.meters, md, l.depths)
	if err != nil {
		return nil, err
	}
	l.tel = tel
	return l, nil
}

// Middleware is New as a serving.Middleware. Invalid options give a
// Predictor whose every call fails with New's error, so the mistake shows
// on the first request.
func Middleware(opts ...Option) serving.Middleware {
	return func(next serving.Predictor) serving.Predictor {
		l, err := New(next, opts...)
		if err != nil {
			return broken.New(next, err)
		}
		return l
	}
}

// Unwrap implements serving.Wrapper.
func (l *Limiter) Unwrap() serving.Predictor { return l.next }

// Predict runs req in the wrapped Predictor when a slot is free or frees
// within the queue's bounds; otherwise it fails at once with an error
// wrapping serving.ErrOverloaded (ResourceExhausted, HTTP 429) whose
// RetryAfter estimates when the queue will have drained. A caller whose ctx
// ends while queued leaves the queue with Canceled or DeadlineExceeded.
func (l *Limiter) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if err := serving.ContextError(ctx, "limit: model "+req.Model); err != nil {
		return nil, err
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.stats.Rejected.Closed++
		l.mu.Unlock()
		return nil, serving.ErrClosed
	case l.inflight < l.cfg.maxInFlight && l.queue.n == 0:
		l.inflight++
		l.stats.Admitted++
		l.mu.Unlock()
	default:
		if err := l.wait(ctx, req); err != nil { // unlocks mu
			return nil, err
		}
	}
	return l.run(ctx, req)
}

// run holds a slot while next answers; a panic releases it on its way up.
func (l *Limiter) run(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	start := time.Now()
	defer l.release(start)
	return l.next.Predict(ctx, req)
}

// release hands the slot to the first waiter, or frees it.
func (l *Limiter) release(start time.Time) {
	held := time.Since(start)
	l.mu.Lock()
	l.observeLocked(held)
	l.releaseLocked()
	l.mu.Unlock()
}

func (l *Limiter) releaseLocked() {
	if w := l.queue.pop(); w != nil {
		w.granted = true
		l.stats.Admitted++
		l.stats.Queued++
		w.ready <- struct{}{} // buffered: never blocks
		return
	}
	l.inflight--
}

// A slot is held for about the mean run time: an EWMA of the last ~10
// runs follows a model that slows under load without jumping on one
// outlier.
const meanAlpha = 0.1

func (l *Limiter) observeLocked(d time.Duration) {
	if l.mean == 0 {
		l.mean = d
		return
	}
	l.mean += time.Duration(meanAlpha * float64(d-l.mean))
}

// waitLocked estimates how long a request at queue position pos (1 = next)
// waits for a slot: the slots drain at maxInFlight per mean run time.
func (l *Limiter) waitLocked(pos int) time.Duration {
	return time.Duration(pos) * l.mean / time.Duration(l.cfg.maxInFlight)
}

// wait queues the request until a slot is handed to it. It is called with
// mu held and returns with it released.
func (l *Limiter) wait(ctx context.Context, req *serving.Request) error {
	pos := l.queue.n + 1
	est := l.waitLocked(pos)
	why := reasonNone
	switch dl, ok := ctx.Deadline(); {
	case pos > l.cfg.maxQueue:
		why = reasonFull
	case l.cfg.maxWait > 0 && est > l.cfg.maxWait:
		why = reasonWait
	case ok && time.Until(dl) < est+l.mean:
		// It would time out before it finished: refusing now lets the
		// client retry elsewhere while it still has time.
		why = reasonDeadline
	}
	if why != reasonNone {
		err := l.rejectLocked(req, why, est)
		l.mu.Unlock()
		return err
	}
	w := &waiter{ready: make(chan struct{}, 1)}
	l.queue.push(w)
	l.mu.Unlock()

	start := time.Now()
	var timeout <-chan time.Time
	if l.cfg.maxWait > 0 {
		t := time.NewTimer(l.cfg.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-w.ready:
		d := time.Since(start)
		l.tel.queued(d)
		serving.TimingOf(ctx).AddQueue(d) // the request's queue time, for the protocol's statistics
		return nil
	case <-ctx.Done():
		why = reasonCanceled
	case <-timeout:
		why = reasonWait
	case <-l.done:
		why = reasonClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted { // handed a slot as we gave up: pass it on
		l.stats.Admitted--
		l.stats.Queued--
		l.releaseLocked()
	} else if !w.dropped {
		l.queue.remove(w)
	}
	if why == reasonCanceled {
		l.stats.Rejected.Canceled++
		l.tel.reject(reasonCanceled)
		return serving.ContextError(ctx, "limit: model "+req.Model+": waiting for a slot")
	}
	return l.rejectLocked(req, why, l.waitLocked(l.queue.n+1))
}

// rejectLocked counts a rejection and builds its error.
func (l *Limiter) rejectLocked(req *serving.Request, why reason, retry time.Duration) error {
	l.tel.reject(why)
	switch why {
	case reasonClosed:
		l.stats.Rejected.Closed++
		return serving.ErrClosed
	case reasonFull:
		l.stats.Rejected.Full++
	case reasonWait:
		l.stats.Rejected.Wait++
	case reasonDeadline:
		l.stats.Rejected.Deadline++
	}
	e := serving.Errorf(serving.ResourceExhausted, "limit: model %q: %d requests in flight, %d queued (%s): %w",
		req.Model, l.inflight, l.queue.n, reasonNames[why], serving.ErrOverloaded)
	// At least one mean run: a client told "now" would only come back to
	// the same full queue.
	e.RetryAfter = max(retry, l.mean, time.Millisecond)
	return e
}

// Stats returns a snapshot of the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.InFlight, s.Waiting = l.inflight, l.queue.n
	return s
}

func (l *Limiter) depths() (inflight, waiting int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.inflight), int64(l.queue.n)
}

// Close refuses new requests (serving.ErrClosed), fails the queued ones the
// same way, stops reporting metrics and closes the wrapped Predictor, which
// the Limiter owns (serving.Middleware). It is idempotent.
func (l *Limiter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for w := l.queue.pop(); w != nil; w = l.queue.pop() {
		w.dropped = true
	}
	close(l.done)
	l.mu.Unlock()
	// Outside mu: a collection running the depths callback takes mu.
	return errors.Join(l.tel.close(), serving.Close(l.next))
}

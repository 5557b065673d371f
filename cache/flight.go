package cache

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// flights coalesces concurrent misses of one key into one computation, like
// golang.org/x/sync/singleflight, with two differences that singleflight
// cannot give: a waiter whose context ends leaves alone, and the computation
// is cancelled once nobody waits for it any more (then the next caller starts
// afresh rather than joining a doomed call).
type flights struct {
	mu      sync.Mutex
	calls   map[uint64]*call // guarded by mu; by slot hash, each with its full key
	closed  bool             // guarded by mu
	wg      sync.WaitGroup   // computations running
	timeout time.Duration
	joins   *atomic.Uint64 // counted on joining, so Stats sees waiters as they wait
	log     *slog.Logger
}

// computer computes the answer to own, the caller's request detached, in
// slot h, and reports whether it came from L2 (a Predictor layer: an
// interface rather than a closure, so a miss allocates none).
type computer interface {
	compute(ctx context.Context, own *serving.Request, h uint64) (resp *serving.Response, fromL2 bool, err error)
}

type call struct {
	key     *serving.Request // detached; immutable
	fp      string
	done    chan struct{}
	resp    *serving.Response // set before done closes
	fromL2  bool              // set before done closes
	err     error
	waiters int // guarded by flights.mu
	cancel  context.CancelFunc
}

// join returns the call computing req's key in slot h, counting one more
// waiter, or nil. Called with mu held.
func (f *flights) join(h uint64, req *serving.Request, fp string) *call {
	if c, ok := f.calls[h]; ok && sameKey(c.key, c.fp, req, fp) {
		c.waiters++
		f.joins.Add(1)
		return c
	}
	return nil
}

// do returns the answer of fn for req's key (slot hash h, fingerprint fp),
// computing it once for all concurrent callers. The caller that computes
// detaches req first, outside the lock, and fn runs on that copy under
// context.WithoutCancel(ctx), so it keeps that caller's values (trace span)
// but not its deadline, bounded by the flight timeout instead. joined
// reports whether this caller waited for another's computation; the call,
// once done, holds the answer and where it came from.
func (f *flights) do(ctx context.Context, h uint64, req *serving.Request, fp string, fn computer) (c *call, joined bool, err error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, false, errCacheClosed
	}
	c = f.join(h, req, fp)
	f.mu.Unlock()
	if c == nil {
		if c, joined = f.start(ctx, h, req, fp, fn); c == nil {
			return nil, false, errCacheClosed
		}
		if !joined && ctx.Done() == nil {
			<-c.done // computed by this goroutine: see start
			return c, false, c.err
		}
	} else {
		joined = true
	}

	select {
	case <-c.done:
		return c, joined, c.err
	case <-ctx.Done():
		f.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			select {
			case <-c.done:
			default:
				// Nobody wants the answer: stop computing it, and let the
				// next caller start a fresh call.
				if f.calls[h] == c {
					delete(f.calls, h)
				}
				c.cancel()
			}
		}
		f.mu.Unlock()
		return nil, joined, serving.ContextError(ctx, "cache: waiting for the answer")
	}
}

// start detaches req and starts its computation, unless an identical miss
// registered one while it copied (then it joins that one: joined). A caller
// whose context can never end computes in its own goroutine, before start
// returns; otherwise the computation gets one. It returns nil once closed.
func (f *flights) start(ctx context.Context, h uint64, req *serving.Request, fp string, fn computer) (c *call, joined bool) {
	own := detach(req)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, false
	}
	if c := f.join(h, req, fp); c != nil {
		f.mu.Unlock()
		return c, true
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
	c = &call{key: own, fp: fp, done: make(chan struct{}), waiters: 1, cancel: cancel}
	if _, taken := f.calls[h]; !taken {
		// A slot taken by another key (a hash collision) leaves this
		// computation unregistered: it runs, uncoalesced.
		f.calls[h] = c
	}
	f.wg.Add(1)
	f.mu.Unlock()
	if ctx.Done() == nil {
		// This caller can never leave, so it may as well compute itself
		// and save a goroutine.
		f.run(cctx, h, c, fn)
	} else {
		go f.run(cctx, h, c, fn)
	}
	return c, false
}

func (f *flights) run(ctx context.Context, h uint64, c *call, fn computer) {
	defer f.wg.Done()
	defer c.cancel()
	func() {
		defer func() {
			if p := recover(); p != nil {
				// Logged here with its stack, since it never reaches the
				// transport's recovery;
				// the error does not repeat the panic value, which may hold
				// internals.
				f.log.Error("cache: model panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				c.resp, c.err = nil, serving.Errorf(serving.Internal, "cache: the model failed with an internal error")
			}
		}()
		c.resp, c.fromL2, c.err = fn.compute(ctx, c.key, h)
	}()
	f.mu.Lock()
	if f.calls[h] == c {
		delete(f.calls, h)
	}
	f.mu.Unlock()
	close(c.done)
}

// close cancels every computation and waits for them to return; later calls
// of do fail.
func (f *flights) close() {
	f.mu.Lock()
	f.closed = true
	for _, c := range f.calls {
		c.cancel()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

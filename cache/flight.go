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
	calls   map[string]*call // guarded by mu; by full canonical key
	closed  bool             // guarded by mu
	wg      sync.WaitGroup   // computations running
	timeout time.Duration
	joins   *atomic.Uint64 // counted on joining, so Stats sees waiters as they wait
}

type computeFunc func(context.Context) (*serving.Response, error)

type call struct {
	done    chan struct{}
	resp    *serving.Response // set before done closes
	err     error
	waiters int // guarded by flights.mu
	cancel  context.CancelFunc
}

// do returns the answer of fn for key, computing it once for all concurrent
// callers. fn runs under context.WithoutCancel(ctx) of the caller that starts
// it, so it keeps that caller's values (trace span) but not its deadline,
// bounded by the flight timeout instead. start is called once, by the caller
// that computes, before it may leave: it returns the computation, which must
// not depend on anything that caller owns. joined reports whether this caller
// waited for another's computation.
func (f *flights) do(ctx context.Context, key []byte, start func() computeFunc) (resp *serving.Response, joined bool, err error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, false, errCacheClosed
	}
	c, joined := f.calls[string(key)]
	if joined {
		c.waiters++
		f.joins.Add(1)
		f.mu.Unlock()
	} else {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout)
		c = &call{done: make(chan struct{}), waiters: 1, cancel: cancel}
		k := string(key)
		f.calls[k] = c
		f.wg.Add(1)
		f.mu.Unlock()
		fn := start()
		if ctx.Done() == nil {
			// This caller can never leave, so it may as well compute
			// itself and save a goroutine.
			f.run(cctx, k, c, fn)
			return c.resp, false, c.err
		}
		go f.run(cctx, k, c, fn)
	}

	select {
	case <-c.done:
		return c.resp, joined, c.err
	case <-ctx.Done():
		f.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			select {
			case <-c.done:
			default:
				// Nobody wants the answer: stop computing it, and let the
				// next caller start a fresh call.
				if f.calls[string(key)] == c {
					delete(f.calls, string(key))
				}
				c.cancel()
			}
		}
		f.mu.Unlock()
		return nil, joined, serving.ContextError(ctx, "cache: waiting for the answer")
	}
}

func (f *flights) run(ctx context.Context, k string, c *call, fn computeFunc) {
	defer f.wg.Done()
	defer c.cancel()
	func() {
		defer func() {
			if p := recover(); p != nil {
				// Logged here with its stack (slog.Default: the cache has no
				// logger), since it never reaches the transport's recovery;
				// the error does not repeat the panic value, which may hold
				// internals.
				slog.Error("cache: model panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				c.resp, c.err = nil, serving.Errorf(serving.Internal, "cache: the model failed with an internal error")
			}
		}()
		c.resp, c.err = fn(ctx)
	}()
	f.mu.Lock()
	if f.calls[k] == c {
		delete(f.calls, k)
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

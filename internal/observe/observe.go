// Package observe is what drift.Monitor and quality.Monitor share: the
// middleware layer, which passes each request on and hands a successful
// answer, with its request, to the monitor, which copies what it keeps
// before the call returns (the caller may reuse both afterwards); the
// hand-off to the monitor's worker (Do); and how the worker publishes
// (Key, SortedKeys, AppendBounded).
//
// The layer follows the ownership rule on serving.Middleware: it owns the
// Predictor it wraps and closes it, and leaves the monitor (shared by
// several chains, closed by its maker) open.
package observe

import (
	"context"
	"sync/atomic"

	"github.com/servekit/servekit/serving"
)

// Middleware returns the layer: what names the caller in context errors
// ("drift: predict"), observe sees every successful answer.
func Middleware(what string, observe func(*serving.Request, *serving.Response)) serving.Middleware {
	return func(next serving.Predictor) serving.Predictor {
		return &layer{what: what, observe: observe, next: next}
	}
}

type layer struct {
	what    string
	observe func(*serving.Request, *serving.Response)
	next    serving.Predictor
	closed  atomic.Bool
}

var (
	_ serving.Predictor = (*layer)(nil)
	_ serving.Wrapper   = (*layer)(nil)
	_ serving.Readier   = (*layer)(nil)
)

func (l *layer) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if l.closed.Load() {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, l.what); err != nil {
		return nil, err
	}
	resp, err := l.next.Predict(ctx, req)
	if err == nil && resp != nil {
		l.observe(req, resp)
	}
	return resp, err
}

func (l *layer) Unwrap() serving.Predictor { return l.next }

func (l *layer) Ready() bool { return !l.closed.Load() }

// Close closes the wrapped Predictor once; the monitor stays open.
func (l *layer) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	return serving.Close(l.next)
}

// Do runs f on a monitor's worker goroutine, which takes functions from
// ctrl until done is closed, and waits for it to finish or ctx to end
// (then the worker still runs f, unwaited for). It returns stopped when
// the worker has stopped, and ctx's error, named by what, when it ends.
func Do(ctx context.Context, ctrl chan<- func(), done <-chan struct{}, stopped error, what string, f func()) error {
	ran := make(chan struct{})
	select {
	case ctrl <- func() { f(); close(ran) }:
	case <-done:
		return stopped
	case <-ctx.Done():
		return serving.ContextError(ctx, what)
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return serving.ContextError(ctx, what)
	}
}

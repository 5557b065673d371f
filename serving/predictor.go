package serving

import (
	"context"
	"io"
	"strconv"
	"strings"
)

// Predictor answers inference requests. Implementations must be safe for
// concurrent use, must honour ctx (return promptly with a DeadlineExceeded or
// Canceled error when it ends), must not modify the Request, and after Close
// must return ErrClosed. Errors should be *Error values, so transports can map
// their Code.
type Predictor interface {
	Predict(ctx context.Context, req *Request) (*Response, error)
}

// PredictorFunc adapts a function to Predictor.
type PredictorFunc func(ctx context.Context, req *Request) (*Response, error)

// Predict calls f.
func (f PredictorFunc) Predict(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Middleware decorates a Predictor: caching, batching, instrumentation.
//
// Every middleware in servekit is built one of two ways, and owns what it
// wraps the same way:
//
//   - A layer whose state belongs to one Predictor (batch, limit,
//     telemetry, predlog) has New(next, opts...), which returns the
//     concrete layer and, when construction can fail, an error (telemetry's
//     options cannot be wrong), and Middleware(opts...), the same for Chain.
//     Middleware cannot fail, so a construction error becomes a layer whose
//     every Predict returns it: the mistake shows on the first request.
//   - State shared by several chains (cache.Cache, drift.Monitor,
//     quality.Monitor, rollout.Shadow) is a value of its own, built with an
//     error by its constructor and closed by whoever built it; its
//     Middleware method puts a thin layer over each Predictor that uses it.
//     Sharing is the point: one cache's memory bound, one monitor's windows,
//     one shadow's comparison across every chain it serves.
//
// Ownership: a middleware owns the Predictor it wraps (from the moment its
// constructor succeeds: one that fails leaves next to the caller), and its
// Close (after releasing its own state: a batcher drains, a logger writes
// its queue) closes it, so closing the outermost layer closes the chain. It never
// closes a value handed to it (a Cache, a Monitor, a Shadow, a predlog
// Sink): such a value may serve other chains, and its maker closes it once
// they are closed. Invalid options are an InvalidArgument error from the
// constructor, never silently clamped or ignored.
type Middleware func(Predictor) Predictor

// Chain composes middlewares; the first is the outermost, so
// Chain(a, b)(p) is a(b(p)): a request passes a, then b, then p.
func Chain(outer Middleware, others ...Middleware) Middleware {
	return func(next Predictor) Predictor {
		for i := len(others) - 1; i >= 0; i-- {
			next = others[i](next)
		}
		return outer(next)
	}
}

// Optional capabilities. Predictors implement them as they can; the helpers
// below find them through layers of middleware that implement Wrapper.

// Wrapper is implemented by middleware to expose the Predictor it wraps.
type Wrapper interface {
	Unwrap() Predictor
}

// Describer is implemented by Predictors that know their model's metadata.
type Describer interface {
	Metadata() Metadata
}

// Readier is implemented by Predictors that may be unable to serve (still
// loading, closed, a dependency down).
type Readier interface {
	Ready() bool
}

// Versioned is implemented by Predictors that hold several versions of one
// model and pick among them themselves, such as a rollout router. A request
// whose Version is set is pinned to that version; one without is routed.
// Transports use it to answer for a version that was not registered on its
// own: readiness and metadata come from Version(v), while requests still go
// through the whole chain with Request.Version set, so outer middleware
// (telemetry) sees them.
type Versioned interface {
	// Versions lists the versions held, in the order they were added.
	Versions() []string
	// Version returns a Predictor pinned to version v, which reports v's own
	// readiness and metadata, or false when v is not held.
	Version(v string) (Predictor, bool)
}

// MetadataOf returns the metadata of the first layer of p that describes
// itself.
func MetadataOf(p Predictor) (Metadata, bool) {
	for ; p != nil; p = unwrap(p) {
		if d, ok := p.(Describer); ok {
			return d.Metadata(), true
		}
	}
	return Metadata{}, false
}

// VersionsOf returns the first layer of p that holds versions itself.
func VersionsOf(p Predictor) (Versioned, bool) {
	for ; p != nil; p = unwrap(p) {
		if v, ok := p.(Versioned); ok {
			return v, true
		}
	}
	return nil, false
}

// IsReady reports whether every layer of p that can tell is ready.
func IsReady(p Predictor) bool {
	for ; p != nil; p = unwrap(p) {
		if r, ok := p.(Readier); ok && !r.Ready() {
			return false
		}
	}
	return true
}

// Close closes the chain p: the outermost layer that is an io.Closer,
// which by the ownership rule (see Middleware) closes what it wraps in
// turn, outermost first, so a batcher drains into a model that is still
// open. Layers with nothing of their own to close (a Wrapper that is no
// io.Closer) are passed through. Close is the way to close a chain whose
// outer layers are not all known; a middleware's Close calls it on the
// Predictor it wraps.
func Close(p Predictor) error {
	for ; p != nil; p = unwrap(p) {
		if c, ok := p.(io.Closer); ok {
			return c.Close()
		}
	}
	return nil
}

func unwrap(p Predictor) Predictor {
	if w, ok := p.(Wrapper); ok {
		return w.Unwrap()
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func shapeString(s []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(d))
	}
	b.WriteByte(']')
	return b.String()
}

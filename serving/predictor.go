package serving

import (
	"context"
	"errors"
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

// Close closes every layer of p that is an io.Closer, outermost first (so a
// batcher drains into a model that is still open), and joins their errors.
// Each layer closes only what it owns; Close is the way to close a chain.
func Close(p Predictor) error {
	var errs []error
	for ; p != nil; p = unwrap(p) {
		if c, ok := p.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
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

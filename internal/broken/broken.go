// Package broken is the Predictor a middleware factory returns when its
// options are invalid: a serving.Middleware cannot return an error, so the
// mistake shows on the first request instead of being ignored. It is
// internal: the middleware packages share it, users see only its errors.
package broken

import (
	"context"
	"io"
	"sync"

	"github.com/servekit/servekit/serving"
)

// Predictor answers every call with the error it was made with. Unwrap
// gives the Predictor it wraps, for metadata and readiness; Close closes
// that, once, as the layer it stands in for would have (the rule on
// serving.Middleware).
type Predictor struct {
	next serving.Predictor
	err  error
	once sync.Once
	cerr error // written once by Close
}

var (
	_ serving.Wrapper = (*Predictor)(nil)
	_ io.Closer       = (*Predictor)(nil)
)

// New returns a Predictor over next that fails every call with err.
func New(next serving.Predictor, err error) *Predictor { return &Predictor{next: next, err: err} }

// Predict returns the error.
func (p *Predictor) Predict(context.Context, *serving.Request) (*serving.Response, error) {
	return nil, p.err
}

// Unwrap implements serving.Wrapper.
func (p *Predictor) Unwrap() serving.Predictor { return p.next }

// Close closes the wrapped Predictor the first time; later calls return
// the first's error.
func (p *Predictor) Close() error {
	p.once.Do(func() { p.cerr = serving.Close(p.next) })
	return p.cerr
}

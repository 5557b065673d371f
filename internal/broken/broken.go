// Package broken is the Predictor a middleware factory returns when its
// options are invalid: a serving.Middleware cannot return an error, so the
// mistake shows on the first request instead of being ignored. It is
// internal: batch and limit share it, users see only its errors.
package broken

import (
	"context"

	"github.com/servekit/servekit/serving"
)

// Predictor answers every call with Err. Unwrap gives Next, so
// serving.Close still closes the model it was given.
type Predictor struct {
	Next serving.Predictor
	Err  error
}

var _ serving.Wrapper = Predictor{}

// Predict returns Err.
func (p Predictor) Predict(context.Context, *serving.Request) (*serving.Response, error) {
	return nil, p.Err
}

// Unwrap implements serving.Wrapper.
func (p Predictor) Unwrap() serving.Predictor { return p.Next }

package servingtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// Fake is a Predictor driven by a function. It honours ctx, counts calls,
// returns serving.ErrClosed after Close, and describes itself when given
// metadata. Build one with Func, Static, Failing, Slow or Linear; it is safe
// for concurrent use.
type Fake struct {
	fn     serving.PredictorFunc
	md     *serving.Metadata
	calls  atomic.Int64
	closes atomic.Int64
	closed atomic.Bool
}

var (
	_ serving.Predictor = (*Fake)(nil)
	_ serving.Describer = (*Fake)(nil)
	_ serving.Readier   = (*Fake)(nil)
)

// Func returns a Fake that answers with f.
func Func(f serving.PredictorFunc) *Fake { return &Fake{fn: f} }

// Static returns a Fake that answers every request with these outputs,
// echoing the request's ID, model and version.
func Static(outputs ...serving.Tensor) *Fake {
	return Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: outputs}, nil
	})
}

// Failing returns a Fake whose every Predict fails with err.
func Failing(err error) *Fake {
	return Func(func(context.Context, *serving.Request) (*serving.Response, error) { return nil, err })
}

// Slow returns a Fake that waits d, or until ctx ends, before asking next.
func Slow(d time.Duration, next serving.Predictor) *Fake {
	f := Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return next.Predict(ctx, req)
		case <-ctx.Done():
			return nil, serving.ContextError(ctx, "servingtest: slow predictor")
		}
	})
	if md, ok := serving.MetadataOf(next); ok {
		f.md = &md
	}
	return f
}

// WithMetadata sets the metadata the Fake describes itself with, and returns f.
func (f *Fake) WithMetadata(md serving.Metadata) *Fake {
	f.md = &md
	return f
}

// Predict implements serving.Predictor.
func (f *Fake) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if f.closed.Load() {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "servingtest: predict"); err != nil {
		return nil, err
	}
	f.calls.Add(1)
	return f.fn(ctx, req)
}

// Calls is the number of requests that reached the function.
func (f *Fake) Calls() int { return int(f.calls.Load()) }

// Metadata implements serving.Describer; zero unless WithMetadata was used.
func (f *Fake) Metadata() serving.Metadata {
	if f.md == nil {
		return serving.Metadata{}
	}
	return *f.md
}

// Ready implements serving.Readier: true until Close.
func (f *Fake) Ready() bool { return !f.closed.Load() }

// Close makes later calls fail with serving.ErrClosed. It is idempotent.
func (f *Fake) Close() error {
	f.closes.Add(1)
	f.closed.Store(true)
	return nil
}

// Closes is the number of times Close was called: a test of a middleware
// checks with it that closing the layer closed the Predictor it wraps, and
// once.
func (f *Fake) Closes() int { return int(f.closes.Load()) }

// Linear returns a batchable fake model with FP32 input "x" [-1, width] and
// output "y" [-1, width], y = 2x + 1 element-wise: rows are independent, so
// it stands in for a real model in batching and caching tests.
func Linear(width int) *Fake {
	w := int64(width)
	md := serving.Metadata{
		Name:     "linear",
		Platform: "servingtest",
		Inputs:   []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, w}}},
		Outputs:  []serving.TensorSpec{{Name: "y", DataType: serving.FP32, Shape: []int64{-1, w}}},
	}
	f := Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if err := md.Validate(req); err != nil {
			return nil, err
		}
		in, _ := req.Input("x")
		x, _ := serving.Values[float32](in)
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = 2*v + 1
		}
		out, err := serving.NewTensor("y", in.Shape, y)
		if err != nil {
			return nil, err
		}
		return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{out}}, nil
	})
	return f.WithMetadata(md)
}

// Rows builds a Linear request of n rows whose values start at first and
// count up.
func Rows(width, n int, first float32) *serving.Request {
	x := make([]float32, width*n)
	for i := range x {
		x[i] = first + float32(i)
	}
	t, err := serving.NewTensor("x", []int64{int64(n), int64(width)}, x)
	if err != nil {
		panic(err) // unreachable: the shape is built to fit
	}
	return &serving.Request{Model: "linear", Inputs: []serving.Tensor{t}}
}

// Recorder wraps a Predictor and keeps every request it passes on.
type Recorder struct {
	next serving.Predictor
	mu   sync.Mutex
	reqs []*serving.Request // guarded by mu
}

// NewRecorder returns a Recorder in front of next.
func NewRecorder(next serving.Predictor) *Recorder { return &Recorder{next: next} }

// Predict records a clone of req and asks the wrapped Predictor.
func (r *Recorder) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone())
	r.mu.Unlock()
	return r.next.Predict(ctx, req)
}

// Unwrap implements serving.Wrapper.
func (r *Recorder) Unwrap() serving.Predictor { return r.next }

// Requests returns the recorded requests in arrival order.
func (r *Recorder) Requests() []*serving.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*serving.Request(nil), r.reqs...)
}

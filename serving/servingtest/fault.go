package servingtest

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// Faults says what an Injector does wrong, each with a probability from 0
// to 1 drawn per request (at most one fault per request; rates summing past
// 1 leave no request healthy).
type Faults struct {
	Panic float64 // panics with "servingtest: injected panic"
	// Hang blocks until ctx ends and then HangExtra longer, as a backend
	// that notices cancellation late, then fails with ctx's error. Without
	// a deadline or cancellation it blocks for ever.
	Hang      float64
	HangExtra time.Duration
	Error     float64 // fails with Err
	// Err is the error of Error (default an Internal error
	// "servingtest: injected fault").
	Err error
	// Seed makes the faults reproducible: the same seed and the same
	// request order give the same faults.
	Seed uint64
}

// FaultCounts is how many of each fault an Injector injected.
type FaultCounts struct {
	Panics, Hangs, Errors, Passed int64
}

// Injector is a Predictor that breaks a share of requests on purpose and
// passes the rest to the Predictor it wraps: chaos testing for the layers
// above (batching, caching, admission control, transports). It is safe for
// concurrent use, and passes metadata and readiness through (Unwrap).
type Injector struct {
	next                        serving.Predictor
	faults                      Faults
	mu                          sync.Mutex
	rng                         *rand.Rand // guarded by mu
	panics, hangs, errs, passed atomic.Int64
}

var _ serving.Wrapper = (*Injector)(nil)

// InjectFaults wraps next in an Injector.
func InjectFaults(next serving.Predictor, f Faults) *Injector {
	if f.Err == nil {
		f.Err = serving.Errorf(serving.Internal, "servingtest: injected fault")
	}
	return &Injector{next: next, faults: f, rng: rand.New(rand.NewPCG(f.Seed, 0xfa017))}
}

// Predict implements serving.Predictor.
func (in *Injector) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	in.mu.Lock()
	x := in.rng.Float64()
	in.mu.Unlock()
	f := in.faults
	switch {
	case x < f.Panic:
		in.panics.Add(1)
		panic("servingtest: injected panic")
	case x < f.Panic+f.Hang:
		in.hangs.Add(1)
		<-ctx.Done()
		time.Sleep(f.HangExtra)
		return nil, serving.ContextError(ctx, "servingtest: injected hang")
	case x < f.Panic+f.Hang+f.Error:
		in.errs.Add(1)
		return nil, f.Err
	}
	in.passed.Add(1)
	return in.next.Predict(ctx, req)
}

// Counts returns how many requests got each fault, and how many passed.
func (in *Injector) Counts() FaultCounts {
	return FaultCounts{Panics: in.panics.Load(), Hangs: in.hangs.Load(), Errors: in.errs.Load(), Passed: in.passed.Load()}
}

// Unwrap implements serving.Wrapper.
func (in *Injector) Unwrap() serving.Predictor { return in.next }

package serving

import (
	"context"
	"sync"
	"time"
)

// Timing is where one request's time went, filled in by the layers that
// measure it as the request passes: the queues (limit, batch) add their
// wait, the backend its compute time and executions, a response cache its
// outcome. A transport puts one in the request's context (WithTiming)
// before calling the chain and reads it when the call returns, to keep the
// protocol's statistics (Triton's statistics extension); layers find it
// with TimingOf. It is how middleware reports what it measures without
// importing anything but this package.
//
// Every method is safe for concurrent use and does nothing on a nil
// *Timing, so a layer writes TimingOf(ctx).AddQueue(d) whether or not a
// transport asked. A layer that works on after its caller has gone (a
// batch that ran for a member that left) may write late; what it writes
// then is simply not read.
type Timing struct {
	mu sync.Mutex
	v  TimingValues
	// one holds the first execution, so that the usual request records
	// its execution without an allocation.
	one [1]Execution
	// node is the context node WithTiming uses the first time, so that a
	// Timing kept in a transport's per-request state reaches the chain
	// without an allocation.
	node timingCtx
}

// timingCtx carries a Timing as context.WithValue would.
type timingCtx struct {
	context.Context
	t *Timing
}

func (c *timingCtx) Value(key any) any {
	if key == (timingKey{}) {
		return c.t
	}
	return c.Context.Value(key)
}

func (c *timingCtx) String() string { return "serving.WithTiming" }

// TimingValues is a snapshot of a Timing.
type TimingValues struct {
	// Queue is the time spent waiting for admission or for a batch.
	Queue time.Duration
	// ComputeInput, ComputeInfer and ComputeOutput are the time the model
	// spent preparing its inputs, running, and turning its outputs into
	// tensors. A request answered as part of a batch is charged the whole
	// batch's, as Triton charges it.
	ComputeInput, ComputeInfer, ComputeOutput time.Duration
	// Cache is what a response cache did with the request, and CacheTime
	// how long it took: looking up for a hit; looking up and storing for a
	// miss.
	Cache     CacheOutcome
	CacheTime time.Duration
	// Executions are the model runs this request accounts for: its own
	// when it ran alone, or its batch's when it is the member a batch
	// reports through (one member per batch does, so that every run is
	// counted once).
	Executions []Execution
}

// Executed reports whether the model ran for the request (alone or in a
// batch), as opposed to a cache answering it or a failure before the run.
func (v TimingValues) Executed() bool {
	return v.ComputeInput+v.ComputeInfer+v.ComputeOutput > 0 || len(v.Executions) > 0
}

// Execution is one run of a model: the rows it took (the batch size) and
// its compute time.
type Execution struct {
	Rows                                      int64
	ComputeInput, ComputeInfer, ComputeOutput time.Duration
}

// CacheOutcome is what a response cache did with a request.
type CacheOutcome uint8

// The outcomes. A request that waited for an identical request's
// computation (coalesced) counts as a hit: it was answered without a run
// of its own.
const (
	CacheNone CacheOutcome = iota // no cache, or bypassed
	CacheHit
	CacheMiss
)

type timingKey struct{}

// WithTiming returns ctx carrying t; t nil removes the Timing ctx carries,
// for work that must not be charged to the request (a shadow copy). The
// first call with a given t costs no allocation (t holds the context
// node), so its owner makes it before sharing t, as a transport does once
// per request.
func WithTiming(ctx context.Context, t *Timing) context.Context {
	if t != nil && t.node.Context == nil {
		t.node = timingCtx{ctx, t}
		return &t.node
	}
	return context.WithValue(ctx, timingKey{}, t)
}

// TimingOf returns the Timing ctx carries, or nil.
func TimingOf(ctx context.Context) *Timing {
	t, _ := ctx.Value(timingKey{}).(*Timing)
	return t
}

// AddQueue adds d to the queue time.
func (t *Timing) AddQueue(d time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.v.Queue += d
	t.mu.Unlock()
}

// Executed records a run of the model for this request: its rows and its
// compute time, counted once as an execution and added to the request's
// compute time. A backend calls it for every run.
func (t *Timing) Executed(e Execution) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.v.ComputeInput += e.ComputeInput
	t.v.ComputeInfer += e.ComputeInfer
	t.v.ComputeOutput += e.ComputeOutput
	t.appendLocked(e)
	t.mu.Unlock()
}

// Charge adds a batch's compute time to a member of it (each member of a
// batch is charged the batch's), and, when executions is not empty, makes
// this member the one that reports the batch's runs. A batcher calls it
// for each member once the batch has run (with its own Timing's values).
func (t *Timing) Charge(v TimingValues, executions bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.v.ComputeInput += v.ComputeInput
	t.v.ComputeInfer += v.ComputeInfer
	t.v.ComputeOutput += v.ComputeOutput
	if executions {
		for _, e := range v.Executions {
			t.appendLocked(e)
		}
	}
	t.mu.Unlock()
}

func (t *Timing) appendLocked(e Execution) {
	if t.v.Executions == nil {
		t.v.Executions = t.one[:0]
	}
	t.v.Executions = append(t.v.Executions, e)
}

// CacheResult records a response cache's outcome and the time it took.
func (t *Timing) CacheResult(o CacheOutcome, d time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.v.Cache, t.v.CacheTime = o, t.v.CacheTime+d
	t.mu.Unlock()
}

// Values returns a snapshot. Its Executions must not be modified.
func (t *Timing) Values() TimingValues {
	if t == nil {
		return TimingValues{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.v
	v.Executions = v.Executions[:len(v.Executions):len(v.Executions)]
	return v
}

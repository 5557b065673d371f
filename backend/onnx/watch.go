package onnx

import (
	"context"
	"sync"
	"time"
)

// How a run stops when its ctx ends. ONNX Runtime checks a terminate flag
// between operators; someone must set it while the run blocks in cgo.
// context.AfterFunc a run did that at once, but cost about 2,000
// instructions and two allocations a run (a context, its stop func, a
// place in the parent's children map), 0.3 µs on every request a transport
// makes cancellable, which is every HTTP and gRPC request. A model
// instead keeps a watcher: a run with a cancellable ctx lists its frame
// for the run's length (a lock, an append, a swap-delete), and one
// goroutine, alive while runs are listed and for watchIdle after, checks
// their ctx every watchEvery and sets the terminate flag of those whose
// ctx has ended. A cancelled run thus stops within watchEvery plus the
// operator running then, where before it was that operator alone: a run
// long enough for its cancellation to matter runs for milliseconds, and
// the one ended early still returns the ctx's error.

// watchEvery is how often the watcher checks the listed runs' ctx: a
// wake-up, two context switches on a busy machine, which beside a batch
// job's runs of several milliseconds on every core is worth keeping rare;
// 5 ms is well inside what a cancelled HTTP or gRPC call waits for.
const watchEvery = 5 * time.Millisecond

// watchIdle is how long the watcher goroutine outlives the last listed
// run, so that steady traffic does not start one a run. Short, so that a
// model left open after its last request holds no goroutine for long
// (goleak gives up after about 0.4 s).
const watchIdle = 100 * time.Millisecond

// watchShared is how many checks in a row must find every listed run
// under one ctx (one Done channel) before the watcher stops polling and
// waits on that channel instead. Runs that all share a ctx for that long
// are a batch job's (batch/job calls Predict from its workers under the
// job's ctx) or one long call's: polling them cost the job a wake-up of
// the scheduler every 5 ms while both cores ran the model (measured on
// the wide MLP job: about 1,500 context switches and 6 % more CPU a
// 64k-row job). Requests, each under its own ctx, keep the polling,
// which costs them nothing a run.
const watchShared = 2

type watcher struct {
	mu     sync.Mutex
	runs   []*frame      // in flight with a cancellable ctx; each knows its index (frame.at)
	alive  bool          // the goroutine runs
	closed bool          // the model is closed: the goroutine returns once no run is listed
	done   chan struct{} // closed when the goroutine returns
	// one is the Done channel the goroutine waits on instead of polling,
	// nil while it polls: every listed run's ctx had it (watchShared).
	// A run listed under another ctx sets it back to nil and kicks the
	// goroutine, which polls again.
	one  <-chan struct{}
	kick chan struct{} // buffered 1: wakes the goroutine from waiting on one
}

// watch lists f, which runs with ctx, until unwatch.
func (w *watcher) watch(f *frame, ctx context.Context) {
	w.mu.Lock()
	f.ctx, f.at = ctx, len(w.runs)
	w.runs = append(w.runs, f)
	if w.one != nil && ctx.Done() != w.one {
		w.one = nil
		w.wake()
	}
	if !w.alive && !w.closed {
		if w.kick == nil {
			w.kick = make(chan struct{}, 1)
		}
		w.alive, w.done = true, make(chan struct{})
		go w.loop(w.done, w.kick)
	}
	w.mu.Unlock()
}

// wake kicks the goroutine out of waiting on one; under w.mu.
func (w *watcher) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// unwatch takes f off the list and reports whether its terminate flag was
// set. No Terminate is in flight once it returns.
func (w *watcher) unwatch(f *frame) (terminated bool) {
	w.mu.Lock()
	last := len(w.runs) - 1
	moved := w.runs[last]
	w.runs[f.at], moved.at = moved, f.at
	w.runs[last] = nil
	w.runs = w.runs[:last]
	terminated = f.terminated
	f.ctx, f.terminated = nil, false
	w.mu.Unlock()
	return terminated
}

// loop checks the listed runs every watchEvery, or, while they all share
// one ctx, when that ctx ends (or every watchIdle, to notice idleness).
func (w *watcher) loop(done, kick chan struct{}) {
	defer close(done)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	busy := time.Now() // when runs were last listed
	shared := 0        // checks in a row that found the runs under one Done channel
	var one <-chan struct{}
	for {
		if one == nil {
			<-tick.C
		} else {
			select {
			case <-one:
			case <-kick:
			case <-time.After(watchIdle):
			}
		}
		w.mu.Lock()
		now := time.Now()
		if len(w.runs) > 0 {
			busy = now
		} else if w.closed || now.Sub(busy) >= watchIdle {
			w.alive, w.one = false, nil
			w.mu.Unlock()
			return
		}
		for _, f := range w.runs {
			if !f.terminated && f.ctx.Err() != nil {
				// A flag that cannot be set leaves the run to finish.
				f.terminated = f.res.ro.Terminate() == nil
			}
		}
		d := w.sharedDone()
		switch {
		case d == nil || w.closed:
			w.one, shared = nil, 0
		case w.one == nil:
			if shared++; shared >= watchShared {
				w.one = d
			}
		}
		polling := one == nil
		one = w.one
		w.mu.Unlock()
		if polling && one != nil {
			tick.Stop()
		} else if !polling && one == nil {
			tick.Reset(watchEvery)
		}
	}
}

// sharedDone is the Done channel of every listed run's ctx, if they share
// one that has not been closed; under w.mu.
func (w *watcher) sharedDone() <-chan struct{} {
	if len(w.runs) == 0 {
		return nil
	}
	d := w.runs[0].ctx.Done()
	for _, f := range w.runs[1:] {
		if f.ctx.Done() != d {
			return nil
		}
	}
	select {
	case <-d:
		return nil
	default:
		return d
	}
}

// close stops the goroutine; call it when no run is in flight.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	done := w.done
	if w.kick != nil {
		w.wake()
	}
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}

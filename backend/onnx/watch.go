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

type watcher struct {
	mu     sync.Mutex
	runs   []*frame      // in flight with a cancellable ctx; each knows its index (frame.at)
	alive  bool          // the goroutine runs
	closed bool          // the model is closed: the goroutine returns once no run is listed
	done   chan struct{} // closed when the goroutine returns
}

// watch lists f, which runs with ctx, until unwatch.
func (w *watcher) watch(f *frame, ctx context.Context) {
	w.mu.Lock()
	f.ctx, f.at = ctx, len(w.runs)
	w.runs = append(w.runs, f)
	if !w.alive && !w.closed {
		w.alive, w.done = true, make(chan struct{})
		go w.loop(w.done)
	}
	w.mu.Unlock()
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

func (w *watcher) loop(done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	idle := 0
	for range tick.C {
		w.mu.Lock()
		if len(w.runs) > 0 {
			idle = 0
		} else if idle++; w.closed || time.Duration(idle)*watchEvery >= watchIdle {
			w.alive = false
			w.mu.Unlock()
			return
		}
		for _, f := range w.runs {
			if !f.terminated && f.ctx.Err() != nil {
				// A flag that cannot be set leaves the run to finish.
				f.terminated = f.res.ro.Terminate() == nil
			}
		}
		w.mu.Unlock()
	}
}

// close stops the goroutine; call it when no run is in flight.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	done := w.done
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}

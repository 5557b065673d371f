package onnx

import (
	"sync"
	"sync/atomic"
)

// refs counts the holders of a session so that Close destroys it only
// after the runs in flight return, without a lock held across ONNX
// Runtime's run: a run takes a reference (one atomic add) and gives it
// back, Close marks the count closed and waits for it to drain. Under a
// read lock held for the whole run, a Close waiting for the write lock
// made every new Predict queue behind it for as long as the slowest run in
// flight; here a Predict that comes after Close is refused at once with
// ErrClosed.
type refs struct {
	// n is 2 per holder, plus 1 once closed. The Model itself is a holder
	// from load until Close, so n reaches exactly 1 (closed, no run) only
	// after Close has given its own reference back.
	n       atomic.Int64
	drained chan struct{} // closed when n reaches 1
	once    sync.Once     // a late acquire that backs off brings n to 1 again
}

func (r *refs) init() {
	r.n.Store(2)
	r.drained = make(chan struct{})
}

// acquire takes a reference, or reports false once the session is closed.
func (r *refs) acquire() bool {
	if r.n.Add(2)&1 != 0 {
		r.release()
		return false
	}
	return true
}

func (r *refs) release() {
	if r.n.Add(-2) == 1 {
		r.once.Do(func() { close(r.drained) })
	}
}

// close refuses new references and waits until the last one is given
// back. Call it once.
func (r *refs) close() {
	r.n.Or(1)
	r.release()
	<-r.drained
}

func (r *refs) closed() bool { return r.n.Load()&1 != 0 }

package rollout

import (
	"context"
	"time"

	"github.com/servekit/servekit/serving"
)

// dispatchTick is how often a busy dispatcher looks for queued mirrors. A
// mirror may wait that long to start, which costs nothing: its timeout
// starts when it runs. A tick that finds nothing to start puts the
// dispatcher to sleep until the next mirror, so an idle Shadow costs
// nothing.
const dispatchTick = time.Millisecond

// mirrorJob is an admitted mirror, from the queue to the statistics. It
// carries the request's context to the goroutine that will run it, as
// http.Request carries its own: detached from its end there
// (context.WithoutCancel). One allocation holds it all: it is made on the
// primary's path.
type mirrorJob struct {
	ctx context.Context
	st  *pairStats
	req *serving.Request // the copy the challenger gets
	completedMirror
}

// dispatch is the Shadow's own goroutine: while mirrors come, every tick
// it starts runners for queued mirrors, up to maxMirrors running. Polling
// on a ticker, not waiting on the queue, is the point: a goroutine waiting
// on a channel is woken by the sender, on the sender's time, and the sender
// here is the primary's caller. When a tick finds the queue empty, it
// stops the ticker and sleeps until the first mirror of the next busy
// spell wakes it (see mirror). Once told to stop, it drops what is queued
// and returns.
func (s *Shadow) dispatch() {
	defer close(s.dispatched)
	t := time.NewTicker(dispatchTick)
	defer t.Stop()
loop:
	for {
		s.startQueued()
		if len(s.queue) == 0 {
			if !s.sleep(t) {
				break loop
			}
			continue // woken by a mirror: start it now
		}
		select {
		case <-t.C:
		case <-s.stop:
			break loop
		}
	}
	for {
		select {
		case j := <-s.queue:
			s.discard(j)
		default:
			return
		}
	}
}

// sleep stops the ticker until a mirror is queued, and reports whether the
// dispatcher should go on (false: it was told to stop).
func (s *Shadow) sleep(t *time.Ticker) bool {
	t.Stop()
	s.idle.Store(true)
	// A mirror queued between the empty check and idle being set saw the
	// dispatcher busy and sent no token: look again before sleeping.
	if len(s.queue) > 0 && s.idle.CompareAndSwap(true, false) {
		t.Reset(dispatchTick)
		return true
	}
	select {
	case <-s.wake: // the waker cleared idle
		t.Reset(dispatchTick)
		return true
	case <-s.stop:
		return false
	}
}

// startQueued starts a runner per queued mirror while fewer than
// maxMirrors run.
func (s *Shadow) startQueued() {
	for s.running.Load() < int64(s.cfg.maxMirrors) {
		select {
		case j := <-s.queue:
			s.running.Add(1)
			s.runners.Add(1)
			go s.runner(j)
		default:
			return
		}
	}
}

// runner runs j, then any mirror queued meanwhile, so a busy shadow keeps
// its runners going without waiting for the dispatcher's tick.
func (s *Shadow) runner(j *mirrorJob) {
	defer s.runners.Done()
	for j != nil {
		s.run(j)
		j = s.next()
	}
	s.running.Add(-1)
}

// next takes a queued mirror, if any and the queue is not being dropped.
func (s *Shadow) next() *mirrorJob {
	select {
	case <-s.stop:
		return nil
	default:
	}
	select {
	case j := <-s.queue:
		return j
	default:
		return nil
	}
}

// discard drops a queued mirror as the Shadow closes.
func (s *Shadow) discard(j *mirrorJob) {
	j.st.dropped.Add(1)
	s.release()
}

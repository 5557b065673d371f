package rollout

import (
	"context"
	"time"

	"github.com/servekit/servekit/serving"
)

// dispatchTick is how often the dispatcher looks for queued mirrors. A
// mirror may wait that long to start, which costs nothing: its timeout
// starts when it runs. An open Shadow costs one timer wake-up per tick.
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

// dispatch is the Shadow's own goroutine: every tick it starts runners
// for queued mirrors, up to maxMirrors running. Polling on a ticker, not
// waiting on the queue, is the point: a goroutine waiting on a channel is
// woken by the sender, on the sender's time, and the sender here is the
// primary's caller. Once told to stop, it drops what is queued and
// returns.
func (s *Shadow) dispatch() {
	defer close(s.dispatched)
	t := time.NewTicker(dispatchTick)
	defer t.Stop()
	for {
		s.startQueued()
		select {
		case <-t.C:
		case <-s.stop:
			for {
				select {
				case j := <-s.queue:
					s.discard(j)
				default:
					return
				}
			}
		}
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

package rollouttest

import (
	"slices"
	"sync"
	"time"

	"github.com/servekit/servekit/rollout"
)

// Clock is a rollout.Clock whose time moves only when Advance is called.
// Timers due by then fire inside Advance, in the goroutine that calls it, in
// order of their due time (ties in the order they were set); a timer set by
// a firing one fires in the same Advance if it falls due by its end. So
// when Advance returns, everything the elapsed time caused has happened. It
// is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time // guarded by mu
	seq    int       // guarded by mu: orders timers due at the same time
	timers []*timer  // guarded by mu
}

var _ rollout.Clock = (*Clock)(nil)

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f when the clock has advanced by d (a d ≤ 0 fires at the
// next Advance, even Advance(0)).
func (c *Clock) AfterFunc(d time.Duration, f func()) rollout.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, at: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d, firing the timers that fall due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		i := c.next(end)
		if i < 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[i]
		c.timers = slices.Delete(c.timers, i, i+1)
		c.now = t.at
		c.mu.Unlock()
		t.f() // without the lock: f may read the clock or set timers
	}
}

// Pending returns how many timers are set and not yet fired or stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// next returns the index of the earliest timer due by end, or -1.
func (c *Clock) next(end time.Time) int {
	best := -1
	for i, t := range c.timers {
		if t.at.After(end) {
			continue
		}
		if best < 0 || t.at.Before(c.timers[best].at) || t.at.Equal(c.timers[best].at) && t.seq < c.timers[best].seq {
			best = i
		}
	}
	return best
}

type timer struct {
	c   *Clock
	at  time.Time
	seq int
	f   func()
}

// Stop removes the timer, reporting whether it had not fired yet.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

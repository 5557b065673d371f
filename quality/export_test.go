package quality

import (
	"sync"
	"time"
)

// FakeClock steps time by hand; its ticker fires on Advance.
type FakeClock struct {
	mu    sync.Mutex
	now   time.Time
	ticks chan time.Time
}

func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, ticks: make(chan time.Time)}
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) NewTicker(time.Duration) (<-chan time.Time, func()) { return c.ticks, func() {} }

// Advance moves time on and delivers one tick to the worker.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	c.ticks <- now
}

// Set moves time without a tick.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func WithClock(c *FakeClock) Option { return optionFunc(func(cfg *config) { cfg.clock = c }) }

// RememberedBytes is what a model's ring and index hold, for the memory
// test: the slots and scores allocated and the index's entries.
func (m *Monitor) Remembered(model string) (n uint64) {
	done := make(chan struct{})
	m.ctrl <- func() {
		if ms := m.w.models[model]; ms != nil {
			n = ms.ring.len()
		}
		close(done)
	}
	<-done
	return n
}

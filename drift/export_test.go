package drift

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

// Set moves time without a tick (records taken in see it).
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func WithClock(c *FakeClock) Option { return optionFunc(func(cfg *config) { cfg.clock = c }) }

var StateBytes = stateBytes

// AddNumbers bins values into a fresh state of fp, for benchmarks.
func AddNumbers(fp *FeatureProfile, vals []float64, limit int) int64 {
	s := newFeatureState(fp)
	s.addNumbers(newBinner(fp.Edges), vals, limit)
	return s.N
}

// RowError is a row's reconstruction error (NaN: missing).
func (c *PCA) RowError(row []float64) float64 {
	return c.reconstructionError(row, make([]float64, len(row)))
}

// Mismatch is the value an extractor writes for text that is no number.
var Mismatch = mismatch

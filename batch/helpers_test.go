package batch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock fires timers only when the test advances it. It starts at the
// real time, so that deadlines of real contexts (time.Now() + d) are d
// away on it too.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	made    int           // timers made so far
	changed chan struct{} // closed and replaced whenever timers change
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

var _ batch.Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now(), changed: make(chan struct{})} }

// changedLocked wakes whoever waits in next.
func (c *fakeClock) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// next returns the earliest timer set for after the clock's now, if any,
// and a channel closed when the timers change.
func (c *fakeClock) next() (at time.Time, ok bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.at.After(c.now) && (!ok || t.at.Before(at)) {
			at, ok = t.at, true
		}
	}
	return at, ok, c.changed
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *fakeClock) NewTimer(d time.Duration) batch.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.made++
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.changedLocked()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	for i, x := range t.clk.timers {
		if x == t {
			t.clk.timers = append(t.clk.timers[:i], t.clk.timers[i+1:]...)
			t.clk.changedLocked()
			return true
		}
	}
	return false
}

// timersMade is the number of timers made so far.
func (c *fakeClock) timersMade() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- c.now
	}
	c.timers = kept
	c.changedLocked()
}

// waitTimer blocks until a timer is pending for the given instant: the
// scheduler has looked at the queue and decided to sleep until then.
func (c *fakeClock) waitTimer(t *testing.T, at time.Time) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("a timer for %v", at), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, x := range c.timers {
			if x.at.Equal(at) {
				return true
			}
		}
		return false
	})
}

// gate is a Linear model whose every call waits for a token, so a test
// controls when batches finish.
type gate struct {
	model   *servingtest.Fake
	entered chan int64 // rows of each call, as it starts
	tokens  chan struct{}
}

func newGate(width int) *gate {
	lin := servingtest.Linear(width)
	md, _ := serving.MetadataOf(lin)
	g := &gate{entered: make(chan int64, 1000), tokens: make(chan struct{}, 1000)}
	g.model = servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		g.entered <- req.Rows()
		select {
		case <-g.tokens:
		case <-ctx.Done():
			return nil, serving.ContextError(ctx, "gate")
		}
		return lin.Predict(ctx, req)
	}).WithMetadata(md)
	return g
}

func (g *gate) release(n int) {
	for range n {
		g.tokens <- struct{}{}
	}
}

type answer struct {
	resp *serving.Response
	err  error
}

// async runs Predict in a goroutine; the result arrives on the channel.
func async(ctx context.Context, p serving.Predictor, req *serving.Request) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		resp, err := p.Predict(ctx, req)
		ch <- answer{resp, err}
	}()
	return ch
}

func mustNew(t *testing.T, next serving.Predictor, opts ...batch.Option) *batch.Batcher {
	t.Helper()
	b, err := batch.New(next, opts...)
	if err != nil {
		t.Fatalf("batch.New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func waitQueued(t *testing.T, b *batch.Batcher, reqs int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d queued requests", reqs), func() bool { return b.Stats().QueuedReqs == reqs })
}

func floats(t *testing.T, resp *serving.Response, name string) []float32 {
	t.Helper()
	out, ok := resp.Output(name)
	if !ok {
		t.Fatalf("no output %q in %+v", name, resp)
	}
	v, err := serving.Values[float32](out)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rowCount sums the rows of the requests a recorder saw.
func rowCount(r *servingtest.Recorder) int64 {
	var n int64
	for _, req := range r.Requests() {
		n += req.Rows()
	}
	return n
}

package batch_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// One request cannot hold a batch or the model hostage (issue 18, rows 9
// and 10). Each test queues a full batch of 64 one-row requests, one of
// them a suspect, with the fake clock standing still; time moves only when
// the test advances it, and only while every call in the model is stuck,
// so the model calls counted are exactly the batcher's choices.

// Values that make the suspects model misbehave when any row of a call
// holds them.
const (
	poison = -1 // the call fails, as a model does with one bad row
	hang   = -2 // the call blocks until its ctx ends, as ONNX Runtime does when terminated
	stuck  = -3 // the call blocks until the test releases it, whatever its ctx
	slow   = -4 // the call waits for a token from the test (or its ctx)
)

// suspects is y = 2x + 1 over one column, misbehaving on the values above.
// Every call is announced on calls as it starts, and its end on returned.
type suspects struct {
	model    *servingtest.Fake
	calls    chan *call
	returned chan struct{}
	release  chan struct{} // closed by free: stuck calls return
	freeOnce sync.Once
	tokens   chan struct{} // one per slow call

	clk  *fakeClock
	mu   sync.Mutex
	okAt map[float32]time.Time // when each value was last answered by a call that succeeded
}

// answeredAt is when x was answered, on the fake clock.
func (s *suspects) answeredAt(x float32) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.okAt[x]
	return at, ok
}

// free lets stuck calls return.
func (s *suspects) free() { s.freeOnce.Do(func() { close(s.release) }) }

// call is one model call: its rows, its ctx, and done once it returned.
type call struct {
	v    []float32
	ctx  context.Context
	done chan struct{}
}

func newSuspects(clk *fakeClock) *suspects {
	lin := servingtest.Linear(1)
	md, _ := serving.MetadataOf(lin)
	s := &suspects{calls: make(chan *call, 1000), returned: make(chan struct{}, 1000),
		release: make(chan struct{}), tokens: make(chan struct{}, 1000), clk: clk, okAt: map[float32]time.Time{}}
	s.model = servingtest.Func(func(ctx context.Context, req *serving.Request) (resp *serving.Response, err error) {
		x, _ := req.Input("x")
		v, _ := serving.Values[float32](x)
		c := &call{v: slices.Clone(v), ctx: ctx, done: make(chan struct{})}
		s.calls <- c
		defer func() {
			if err == nil {
				s.mu.Lock()
				for _, x := range c.v {
					s.okAt[x] = s.clk.Now()
				}
				s.mu.Unlock()
			}
			close(c.done)
			s.returned <- struct{}{}
		}()
		switch {
		case slices.Contains(v, poison):
			return nil, serving.Errorf(serving.InvalidArgument, "suspects: poisoned row")
		case slices.Contains(v, hang):
			<-ctx.Done()
			return nil, serving.ContextError(ctx, "suspects: hung")
		case slices.Contains(v, stuck):
			<-s.release
			return nil, errors.New("suspects: released")
		case slices.Contains(v, slow):
			select {
			case <-s.tokens:
			case <-ctx.Done():
				return nil, serving.ContextError(ctx, "suspects: slow")
			}
		}
		return lin.Predict(ctx, req)
	}).WithMetadata(md)
	return s
}

// inBatch queues n one-row requests, x = 1..n but for bad at index at,
// behind a batcher that dispatches only when the clock passes the max delay,
// and advances the clock to dispatch them as one batch.
func inBatch(t *testing.T, b *batch.Batcher, clk *fakeClock, ctx context.Context, n, at int, bad float32) []<-chan answer {
	t.Helper()
	var chans []<-chan answer
	for i := range n {
		x := float32(i + 1)
		if i == at {
			x = bad
		}
		chans = append(chans, async(ctx, b, servingtest.Rows(1, 1, x)))
	}
	waitQueued(t, b, n)
	clk.Advance(time.Hour)
	return chans
}

// guarded is mustNew for tests whose model may hang: if the test stops
// early, the runs still going are cancelled and stuck calls released, so
// that Close can return and the failure show.
func guarded(t *testing.T, s *suspects, opts ...batch.Option) *batch.Batcher {
	t.Helper()
	b := mustNew(t, s.model, opts...)
	t.Cleanup(func() { // before mustNew's Close
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = b.Shutdown(ctx)
		s.free()
	})
	return b
}

// hourDelay: batches are dispatched only when the clock passes the max
// delay (64 rows do not fill one).
func hourDelay(clk *fakeClock, opts ...batch.Option) []batch.Option {
	return append([]batch.Option{batch.WithAdaptive(false), batch.WithMaxDelay(time.Hour), batch.WithClock(clk),
		batch.WithMaxBatchRows(100)}, opts...)
}

// fresh sends a request of a full batch, which runs without waiting for the
// clock, and checks its answer.
func fresh(t *testing.T, b *batch.Batcher) {
	t.Helper()
	resp, err := b.Predict(context.Background(), servingtest.Rows(1, 100, 0))
	if err != nil {
		t.Fatalf("fresh request: %v", err)
	}
	if y := floats(t, resp, "y"); y[99] != 199 {
		t.Fatalf("fresh request: y[99] = %v, want 199", y[99])
	}
}

// checkGood checks that every member but the one at bad got 2x+1.
func checkGood(t *testing.T, got map[int]answer, bad int) {
	t.Helper()
	for i, a := range got {
		if i == bad {
			continue
		}
		if a.err != nil {
			t.Errorf("member %d failed: %v", i, a.err)
			continue
		}
		if y := floats(t, a.resp, "y"); y[0] != 2*float32(i+1)+1 {
			t.Errorf("member %d got %v, want %v", i, y, 2*float32(i+1)+1)
		}
	}
}

// logRuns is the most calls a culprit among 64 costs: the joined run, then
// two halves at each of log2(64) levels.
const logRuns = 1 + 2*6

func TestPoisonedMemberCostsLogRuns(t *testing.T) {
	// Before: every member of the failed batch ran again alone, in turn:
	// 1 + 64 calls, each answered only after all the runs before it.
	for _, at := range []int{0, 17, 63} {
		clk := newFakeClock()
		s := newSuspects(clk)
		b := guarded(t, s, hourDelay(clk)...)
		chans := inBatch(t, b, clk, context.Background(), 64, at, poison)
		got := map[int]answer{}
		for i, ch := range chans {
			got[i] = <-ch
		}
		checkGood(t, got, at)
		if serving.CodeOf(got[at].err) != serving.InvalidArgument {
			t.Errorf("culprit at %d: %v, want invalid_argument", at, got[at].err)
		}
		if n := len(s.calls); n != logRuns {
			t.Errorf("culprit at %d: %d model calls, want %d", at, n, logRuns)
		}
		st := b.Stats()
		if st.Isolations != 6 || st.Ended != 0 {
			t.Errorf("culprit at %d: %d isolations, %d ended; want 6 and 0", at, st.Isolations, st.Ended)
		}
		// The next request runs once, alone.
		fresh(t, b)
		if n := len(s.calls); n != logRuns+1 {
			t.Errorf("after the culprit: %d calls, want %d", n, logRuns+1)
		}
	}
}

// driver advances the clock to the batcher's next timer whenever every run
// the batcher has going is a call stuck in the model, until its condition
// holds. It records every call.
type driver struct {
	t       *testing.T
	s       *suspects
	clk     *fakeClock
	b       *batch.Batcher
	hook    chan struct{} // from batch.WithHook
	runs    atomic.Int64  // runs started and not yet answered or ended
	calls   [][]float32
	open    []*call // calls that have not returned
	maxLive int     // most calls live (not ended) at once

	answers chan indexed   // from collect
	got     map[int]answer // by index of the channel collect was given
}

type indexed struct {
	i int
	a answer
}

// collect gathers the answers of chans into d.got as they arrive.
func (d *driver) collect(chans []<-chan answer) {
	d.answers, d.got = make(chan indexed, len(chans)), map[int]answer{}
	for i, ch := range chans {
		go func() { d.answers <- indexed{i, <-ch} }()
	}
}

// wait blocks, without moving the clock, until n members have answers.
func (d *driver) wait(n int) {
	for len(d.got) < n {
		a := <-d.answers
		d.got[a.i] = a.a
	}
}

// modelAnswered reports whether the model has answered every x in 1..n
// but the one at index skip (their callers hear just after).
func (s *suspects) modelAnswered(n, skip int) bool {
	for i := range n {
		if _, ok := s.answeredAt(float32(i + 1)); !ok && i != skip {
			return false
		}
	}
	return true
}

// answered reports whether the member at i has its answer.
func (d *driver) answered(i int) bool {
	_, ok := d.got[i]
	return ok
}

// watched returns the options that let a driver follow b's runs.
func (d *driver) watched(opts ...batch.Option) []batch.Option {
	d.hook = make(chan struct{}, 1)
	return append(opts, batch.WithHook(func(delta int) {
		d.runs.Add(int64(delta))
		select {
		case d.hook <- struct{}{}:
		default:
		}
	}))
}

func isSuspect(v []float32) bool {
	return slices.Contains(v, hang) || slices.Contains(v, stuck) || slices.Contains(v, slow)
}

// until runs the loop until cond holds; cond is checked after every event.
func (d *driver) until(cond func() bool) {
	d.t.Helper()
	for !cond() {
		// Calls whose ctx ended were ended by the batcher (or lost their
		// callers): they hold nothing, returned or not.
		live, good := 0, false
		d.open = slices.DeleteFunc(d.open, func(c *call) bool {
			select {
			case <-c.done:
				return true
			default:
			}
			if c.ctx.Err() == nil {
				live++
				good = good || !isSuspect(c.v)
			}
			return false
		})
		d.maxLive = max(d.maxLive, live)
		at, timer, changed := d.clk.next()
		if timer && live > 0 && !good && int64(live) == d.runs.Load() {
			d.clk.Advance(at.Sub(d.clk.Now()))
			continue
		}
		select {
		case c := <-d.s.calls:
			d.calls = append(d.calls, c.v)
			d.open = append(d.open, c)
		case <-d.s.returned:
		case <-d.hook:
		case a := <-d.answers:
			d.got[a.i] = a.a
		case <-changed:
		case <-time.After(10 * time.Second): // a failsafe, never a measure
			d.t.Fatalf("stalled: %d calls in the model, %d runs, %d answers, clock %v, stats %+v",
				len(d.open), d.runs.Load(), len(d.got), d.clk.Now(), d.b.Stats())
		}
	}
}

func TestHangingMemberIsIsolated(t *testing.T) {
	// Row 9 of issue 18: one request hangs inside a 64-row batch. Before,
	// its batch-mates failed at their deadlines and fresh requests waited
	// on the one run slot until the hanging request's own deadline. Now
	// the joined run is ended at half the time its members have left, the
	// others are answered in halves within their deadlines, the culprit
	// fails at its own limit, and fresh requests run meanwhile.
	for _, tc := range []struct {
		name     string
		bad      float32
		deadline bool // members have a ctx deadline; else the max run time bounds them
	}{
		{"cooperative/deadline", hang, true},
		{"cooperative/no-deadline", hang, false},
		{"ignores-ctx/deadline", stuck, true},
		{"ignores-ctx/no-deadline", stuck, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			s := newSuspects(clk)
			d := &driver{t: t, s: s, clk: clk}
			b := guarded(t, s, d.watched(hourDelay(clk, batch.WithMaxRunTime(2*time.Hour))...)...)
			d.b = b
			ctx := context.Background()
			if tc.deadline {
				var cancel context.CancelFunc
				// Dispatched an hour from now: two hours left then.
				ctx, cancel = context.WithDeadline(ctx, clk.Now().Add(3*time.Hour))
				defer cancel()
			}
			start := clk.Now()
			const at = 41
			d.collect(inBatch(t, b, clk, ctx, 64, at, tc.bad))
			// Until the model has answered every good member; then their
			// callers hear.
			d.until(func() bool { return s.modelAnswered(64, at) })
			d.wait(63)
			checkGood(t, d.got, at)
			// The first run started an hour (of the clock's) after start:
			// everyone's limit is two hours after that.
			var lastGood time.Time
			for i := range 64 {
				if when, _ := s.answeredAt(float32(i + 1)); i != at && when.After(lastGood) {
					lastGood = when
				}
			}
			if limit := start.Add(3 * time.Hour); !lastGood.Before(limit) {
				t.Errorf("the last good member was answered at %v, after its limit %v", lastGood.Sub(start), limit.Sub(start))
			}
			if d.answered(at) {
				t.Fatalf("the culprit was answered before its limit: %+v", d.got[at])
			}
			// The culprit now runs alone, outside the run slots: fresh
			// requests are answered while it is stuck.
			for range 3 {
				fresh(t, b)
			}
			// At its own limit it fails.
			d.until(func() bool { return d.answered(at) })
			if serving.CodeOf(d.got[at].err) != serving.DeadlineExceeded {
				t.Errorf("culprit: %v, want deadline_exceeded", d.got[at].err)
			}
			if !d.clk.Now().Equal(start.Add(3 * time.Hour)) {
				t.Errorf("the culprit failed at %v, want at its limit (3h)", d.clk.Now().Sub(start))
			}
			if n := len(d.calls); n > logRuns+3 { // + the fresh requests
				t.Errorf("%d model calls, want at most %d", n, logRuns+3)
			}
			if st := b.Stats(); st.Ended < 6 || st.InFlight != 0 {
				t.Errorf("stats %+v: want 6 runs ended or more, none in flight", st)
			}
			s.free() // stuck calls return; Close waits for them
		})
	}
}

func TestSlowMemberIsAnswered(t *testing.T) {
	// A member that makes its run slow, but not forever, is no culprit:
	// within the run's limit the batch simply takes longer; past it, its
	// neighbours are answered in halves and it still gets its answer,
	// running alone, within its own limit.
	t.Run("within-limit", func(t *testing.T) {
		clk := newFakeClock()
		s := newSuspects(clk)
		b := guarded(t, s, hourDelay(clk)...)
		chans := inBatch(t, b, clk, context.Background(), 64, 9, slow)
		<-s.calls
		s.tokens <- struct{}{}
		for i, ch := range chans {
			if a := <-ch; a.err != nil {
				t.Fatalf("member %d: %v", i, a.err)
			}
		}
		if st := b.Stats(); st.Batches != 1 || st.Isolations != 0 || st.Ended != 0 {
			t.Errorf("stats %+v: want one run, nothing isolated or ended", st)
		}
	})
	t.Run("past-limit", func(t *testing.T) {
		clk := newFakeClock()
		s := newSuspects(clk)
		d := &driver{t: t, s: s, clk: clk}
		b := guarded(t, s, d.watched(hourDelay(clk, batch.WithMaxRunTime(time.Hour))...)...)
		d.b = b
		const at = 9
		d.collect(inBatch(t, b, clk, context.Background(), 64, at, slow))
		// Let the clock run until the others are answered and the slow
		// member runs alone, then let it finish.
		d.until(func() bool { return s.modelAnswered(64, at) && d.runs.Load() == 1 })
		d.wait(63)
		s.tokens <- struct{}{}
		d.wait(64)
		got := d.got
		checkGood(t, got, at)
		if a := got[at]; a.err != nil || floats(t, a.resp, "y")[0] != 2*slow+1 {
			t.Errorf("slow member: %+v, want its answer", a)
		}
		if st := b.Stats(); st.Ended < 6 {
			t.Errorf("stats %+v: want the slow member's runs ended down to it", st)
		}
	})
}

func TestNoDeadlineGetsMaxRunTime(t *testing.T) {
	// A lone request without a deadline runs in its caller's goroutine,
	// holding the run slot. Past the max run time its slot is given back,
	// so that fresh requests run, and its run is cancelled: a model that
	// honours ctx returns, and the caller gets DeadlineExceeded.
	clk := newFakeClock()
	s := newSuspects(clk)
	b := guarded(t, s, batch.WithMaxRunTime(time.Minute), batch.WithClock(clk), batch.WithMaxDelay(time.Hour))
	ctx, cancel := context.WithCancel(context.Background()) // can end, has no deadline
	defer cancel()
	hung := async(ctx, b, servingtest.Rows(1, 1, hang))
	<-s.calls
	// Without the bound, this would queue behind the hung run for ever
	// (batch while busy, an hour's max delay that never passes).
	fresh := async(context.Background(), b, servingtest.Rows(1, 1, 1))
	waitQueued(t, b, 1)
	clk.waitTimer(t, clk.Now().Add(time.Minute))
	clk.Advance(time.Minute)
	if r := <-hung; serving.CodeOf(r.err) != serving.DeadlineExceeded {
		t.Errorf("hung request: %v, want deadline_exceeded", r.err)
	}
	if r := <-fresh; r.err != nil {
		t.Errorf("fresh request: %v", r.err)
	}

	// A caller whose ctx can never end cannot have its run cancelled: the
	// slot is still given back at the bound, and the call returns when the
	// model does.
	stuckCall := async(context.Background(), b, servingtest.Rows(1, 1, stuck))
	for c := <-s.calls; !slices.Contains(c.v, stuck); c = <-s.calls {
	}
	fresh = async(context.Background(), b, servingtest.Rows(1, 1, 2))
	waitQueued(t, b, 1)
	clk.waitTimer(t, clk.Now().Add(time.Minute))
	clk.Advance(time.Minute)
	if r := <-fresh; r.err != nil {
		t.Errorf("fresh request beside a stuck one: %v", r.err)
	}
	s.free()
	if r := <-stuckCall; r.err == nil {
		t.Errorf("stuck request: answered, want the model's error")
	}
	if st := b.Stats(); st.Ended != 2 || st.InFlight != 0 {
		t.Errorf("stats %+v: want 2 runs ended, none in flight", st)
	}
}

func TestCallerGoneDuringRetry(t *testing.T) {
	// A member whose caller leaves while its half waits to run again is
	// dropped from the half: the model never sees it again.
	clk := newFakeClock()
	s := newSuspects(clk)
	d := &driver{t: t, s: s, clk: clk}
	b := guarded(t, s, d.watched(hourDelay(clk, batch.WithMaxRunTime(time.Hour))...)...)
	d.b = b
	leaverCtx, leave := context.WithCancel(context.Background())
	defer leave()
	var chans []<-chan answer
	for i, x := range []float32{1, hang, 3, 4} {
		ctx := context.Background()
		if x == 4 {
			ctx = leaverCtx
		}
		chans = append(chans, async(ctx, b, servingtest.Rows(1, 1, x)))
		waitQueued(t, b, i+1) // in this order, so that the halves are [1 hang] [3 4]
	}
	clk.Advance(time.Hour)
	d.collect(chans)
	d.until(func() bool {
		if !d.answered(3) && slices.ContainsFunc(d.calls, func(v []float32) bool { return slices.Equal(v, []float32{1, hang}) }) {
			leave() // [3 4] waits behind [1 hang]
			for !d.answered(3) {
				a := <-d.answers
				d.got[a.i] = a.a
			}
		}
		return len(d.got) == 4
	})
	got := d.got
	if serving.CodeOf(got[3].err) != serving.Canceled {
		t.Errorf("leaver: %v, want canceled", got[3].err)
	}
	for _, i := range []int{0, 2} {
		if got[i].err != nil {
			t.Errorf("member %d: %v", i, got[i].err)
		}
	}
	if serving.CodeOf(got[1].err) != serving.DeadlineExceeded {
		t.Errorf("culprit: %v, want deadline_exceeded", got[1].err)
	}
	for _, v := range d.calls[1:] {
		if slices.Contains(v, 4) {
			t.Errorf("the model ran %v after the caller of 4 left; calls %v", v, d.calls)
		}
	}
}

func TestModelHangingOnEverything(t *testing.T) {
	// When every request hangs the model, every member of a batch ends up
	// a suspect, each fails at its own limit, and they do not all run at
	// once: the run slot and twice as many suspects alone, at most.
	clk := newFakeClock()
	s := newSuspects(clk)
	d := &driver{t: t, s: s, clk: clk}
	b := guarded(t, s, d.watched(hourDelay(clk, batch.WithMaxRunTime(time.Hour))...)...)
	d.b = b
	var chans []<-chan answer
	for range 16 {
		chans = append(chans, async(context.Background(), b, servingtest.Rows(1, 1, hang)))
	}
	waitQueued(t, b, 16)
	clk.Advance(time.Hour)
	d.collect(chans)
	d.until(func() bool { return len(d.got) == 16 })
	for i, a := range d.got {
		if serving.CodeOf(a.err) != serving.DeadlineExceeded {
			t.Errorf("member %d: %v, want deadline_exceeded", i, a.err)
		}
	}
	if d.maxLive > 3 {
		t.Errorf("%d calls in the model at once, want at most 3", d.maxLive)
	}
}

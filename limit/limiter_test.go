package limit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gate is a model whose calls block until the test lets them go, one
// release per call, and that records the order calls arrived in.
type gate struct {
	release chan struct{}
	entered chan string
	running atomic.Int64
	peak    atomic.Int64
}

func newGate() *gate {
	return &gate{release: make(chan struct{}, 1000), entered: make(chan string, 1000)}
}

func (g *gate) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	g.entered <- req.ID
	select {
	case <-g.release:
		return &serving.Response{ID: req.ID, Model: req.Model}, nil
	case <-ctx.Done():
		return nil, serving.ContextError(ctx, "gate")
	}
}

type result struct {
	id  string
	err error
}

func call(ctx context.Context, p serving.Predictor, id string, out chan<- result) {
	_, err := p.Predict(ctx, &serving.Request{ID: id, Model: "m"})
	out <- result{id, err}
}

func TestAdmitsQueuesThenRejects(t *testing.T) {
	g := newGate()
	l, err := limit.New(g, limit.WithMaxInFlight(2), limit.WithMaxQueue(2))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := make(chan result, 10)
	for _, id := range []string{"a", "b"} {
		go call(context.Background(), l, id, out)
		<-g.entered
	}
	for _, id := range []string{"c", "d"} {
		go call(context.Background(), l, id, out)
		poll.Until(t, id+" queued", func() bool { return l.Stats().Waiting == map[string]int{"c": 1, "d": 2}[id] })
	}
	// Every slot taken and the queue full: refused at once.
	start := time.Now()
	_, err = l.Predict(context.Background(), &serving.Request{ID: "e", Model: "m"})
	if !errors.Is(err, serving.ErrOverloaded) || serving.CodeOf(err) != serving.ResourceExhausted {
		t.Fatalf("fifth request: %v, want ErrOverloaded (resource_exhausted)", err)
	}
	if d := serving.RetryAfterOf(err); d <= 0 {
		t.Errorf("RetryAfter %v, want a positive hint", d)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("rejection took %v: it must not wait", time.Since(start))
	}
	// Released slots go to the queue in order.
	g.release <- struct{}{}
	if id := <-g.entered; id != "c" {
		t.Errorf("first queued to run: %s, want c (FIFO)", id)
	}
	g.release <- struct{}{}
	if id := <-g.entered; id != "d" {
		t.Errorf("second queued to run: %s, want d", id)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	for range 4 {
		if r := <-out; r.err != nil {
			t.Errorf("%s: %v", r.id, r.err)
		}
	}
	s := l.Stats()
	want := limit.Stats{Admitted: 4, Queued: 2, Rejected: limit.Rejections{Full: 1}}
	if s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if p := g.peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

func TestZeroQueueRejectsWhenFull(t *testing.T) {
	g := newGate()
	l, _ := limit.New(g, limit.WithMaxInFlight(1), limit.WithMaxQueue(0))
	defer l.Close()
	out := make(chan result, 1)
	go call(context.Background(), l, "a", out)
	<-g.entered
	if _, err := l.Predict(context.Background(), &serving.Request{Model: "m"}); serving.CodeOf(err) != serving.ResourceExhausted {
		t.Errorf("with no queue: %v, want resource_exhausted", err)
	}
	g.release <- struct{}{}
	<-out
}

func TestCanceledWaiterLeavesAndSlotsAreNotLost(t *testing.T) {
	g := newGate()
	l, _ := limit.New(g, limit.WithMaxInFlight(1), limit.WithMaxQueue(3))
	defer l.Close()
	out := make(chan result, 10)
	go call(context.Background(), l, "a", out)
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	go call(ctx, l, "b", out)
	poll.Until(t, "b queued", func() bool { return l.Stats().Waiting == 1 })
	go call(context.Background(), l, "c", out)
	poll.Until(t, "c queued", func() bool { return l.Stats().Waiting == 2 })
	cancel()
	if r := <-out; r.id != "b" || serving.CodeOf(r.err) != serving.Canceled {
		t.Fatalf("cancelled waiter: %s %v, want b canceled", r.id, r.err)
	}
	g.release <- struct{}{}
	if id := <-g.entered; id != "c" {
		t.Errorf("next to run: %s, want c", id)
	}
	g.release <- struct{}{}
	for range 2 {
		if r := <-out; r.err != nil {
			t.Errorf("%s: %v", r.id, r.err)
		}
	}
	if s := l.Stats(); s.InFlight != 0 || s.Waiting != 0 || s.Rejected.Canceled != 1 {
		t.Errorf("stats after: %+v, want nothing in flight or waiting and one canceled", s)
	}
}

func TestMaxWait(t *testing.T) {
	g := newGate()
	l, _ := limit.New(g, limit.WithMaxInFlight(1), limit.WithMaxWait(20*time.Millisecond))
	defer l.Close()
	out := make(chan result, 1)
	go call(context.Background(), l, "a", out)
	<-g.entered
	_, err := l.Predict(context.Background(), &serving.Request{Model: "m"})
	if !errors.Is(err, serving.ErrOverloaded) {
		t.Errorf("waited past max wait: %v, want ErrOverloaded", err)
	}
	if s := l.Stats(); s.Rejected.Wait != 1 || s.Waiting != 0 {
		t.Errorf("stats %+v, want one max-wait rejection and an empty queue", s)
	}
	g.release <- struct{}{}
	<-out
}

// A request whose deadline comes before its turn could finish is refused
// at once rather than queued to time out.
func TestRefusesWhatWouldMissItsDeadline(t *testing.T) {
	model := servingtest.Slow(100*time.Millisecond, servingtest.Static())
	l, _ := limit.New(model, limit.WithMaxInFlight(1), limit.WithMaxQueue(10))
	defer l.Close()
	if _, err := l.Predict(context.Background(), &serving.Request{Model: "m"}); err != nil {
		t.Fatal(err) // one run teaches the limiter the run time
	}
	out := make(chan result, 1)
	go call(context.Background(), l, "a", out)
	poll.Until(t, "a running", func() bool { return l.Stats().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := l.Predict(ctx, &serving.Request{Model: "m"})
	if serving.CodeOf(err) != serving.ResourceExhausted {
		t.Errorf("request that cannot make its deadline: %v, want resource_exhausted", err)
	}
	if ctx.Err() != nil {
		t.Error("refused only after the deadline: it must be refused at once")
	}
	if s := l.Stats(); s.Rejected.Deadline != 1 {
		t.Errorf("stats %+v, want one deadline rejection", s)
	}
	if r := <-out; r.err != nil {
		t.Error(r.err)
	}
}

func TestPanicReleasesSlot(t *testing.T) {
	boom := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { panic("model bug") })
	l, _ := limit.New(boom, limit.WithMaxInFlight(1), limit.WithMaxQueue(0))
	defer l.Close()
	for range 3 {
		func() {
			defer func() {
				if r := recover(); r != "model bug" {
					t.Errorf("recovered %v, want the model's panic passed on", r)
				}
			}()
			_, _ = l.Predict(context.Background(), &serving.Request{Model: "m"})
		}()
	}
	if s := l.Stats(); s.InFlight != 0 || s.Admitted != 3 {
		t.Errorf("stats after panics: %+v, want every call admitted and no slot held", s)
	}
}

func TestCloseFailsQueued(t *testing.T) {
	g := newGate()
	l, _ := limit.New(g, limit.WithMaxInFlight(1))
	out := make(chan result, 2)
	go call(context.Background(), l, "a", out)
	<-g.entered
	go call(context.Background(), l, "b", out)
	poll.Until(t, "b queued", func() bool { return l.Stats().Waiting == 1 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if r := <-out; r.id != "b" || !errors.Is(r.err, serving.ErrClosed) {
		t.Errorf("queued at Close: %s %v, want b ErrClosed", r.id, r.err)
	}
	if _, err := l.Predict(context.Background(), &serving.Request{Model: "m"}); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	g.release <- struct{}{}
	if r := <-out; r.err != nil {
		t.Errorf("running at Close: %v, want its answer", r.err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, o := range map[string]limit.Option{
		"inflight": limit.WithMaxInFlight(0),
		"queue":    limit.WithMaxQueue(-1),
		"wait":     limit.WithMaxWait(-time.Second),
	} {
		if _, err := limit.New(servingtest.Static(), o); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("%s: New error %v, want invalid_argument", name, err)
		}
		p := limit.Middleware(o)(servingtest.Static())
		if _, err := p.Predict(context.Background(), &serving.Request{}); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("%s: Middleware's Predict %v, want invalid_argument", name, err)
		}
	}
}

// Many callers, some giving up: the limit holds, and every slot comes back.
func TestStress(t *testing.T) {
	var running, peak atomic.Int64
	model := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(50 * time.Microsecond)
		return &serving.Response{}, nil
	})
	l, _ := limit.New(model, limit.WithMaxInFlight(3), limit.WithMaxQueue(5))
	defer l.Close()
	var ok, refused, gaveUp atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				if (i+j)%7 == 0 {
					cancel()
				}
				_, err := l.Predict(ctx, &serving.Request{Model: "m"})
				cancel()
				switch serving.CodeOf(err) {
				case serving.OK:
					ok.Add(1)
				case serving.ResourceExhausted:
					refused.Add(1)
				case serving.Canceled:
					gaveUp.Add(1)
				default:
					t.Errorf("unexpected %v", err)
				}
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 3 {
		t.Errorf("peak concurrency %d, want at most 3", p)
	}
	s := l.Stats()
	if s.InFlight != 0 || s.Waiting != 0 {
		t.Errorf("after the storm: %+v, want nothing held", s)
	}
	if s.Admitted != ok.Load() {
		t.Errorf("admitted %d, answered %d", s.Admitted, ok.Load())
	}
	t.Logf("ok %d, refused %d, gave up %d", ok.Load(), refused.Load(), gaveUp.Load())
}

func TestConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			// Conformance's concurrent check runs 8 callers at once and
			// wants every one answered: a queue for the 6 beyond the 2 in
			// flight, or the limiter would (rightly) refuse some of them.
			return limit.Middleware(limit.WithMaxInFlight(2), limit.WithMaxQueue(8))(servingtest.Linear(2))
		},
		Request:       func() *serving.Request { return servingtest.Rows(2, 2, 1) },
		Deterministic: true,
	})
}

// The rule on serving.Middleware: a Limiter owns the model it wraps and
// its Close closes it.
func TestCloseClosesTheModel(t *testing.T) {
	servingtest.Ownership(t, limit.Middleware(), nil)
}

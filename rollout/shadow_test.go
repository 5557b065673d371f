package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// newShadow makes a Shadow and closes it when the test ends.
func newShadow(t *testing.T, challenger serving.Predictor, opts ...rollout.ShadowOption) *rollout.Shadow {
	t.Helper()
	s, err := rollout.NewShadow(challenger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// drain waits for every mirror in flight, so the snapshot is final.
func drain(t *testing.T, s *rollout.Shadow) rollout.ShadowSnapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	return s.Snapshot()
}

func TestShadowConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			s := newShadow(t, servingtest.Linear(4))
			return s.Middleware()(servingtest.Linear(4))
		},
		Request:       func() *serving.Request { return servingtest.Rows(4, 3, 1) },
		Deterministic: true,
	})
}

// Challengers that must change nothing for the primary.
func badChallengers() map[string]func() (serving.Predictor, func()) {
	return map[string]func() (serving.Predictor, func()){
		"healthy": func() (serving.Predictor, func()) { return servingtest.Linear(4), func() {} },
		"wrong": func() (serving.Predictor, func()) {
			return servingtest.Static(mustTensor("y", []int64{1, 1}, []float32{7})), func() {}
		},
		"hanging": func() (serving.Predictor, func()) {
			return servingtest.Func(func(ctx context.Context, _ *serving.Request) (*serving.Response, error) {
				<-ctx.Done()
				return nil, serving.ContextError(ctx, "hang")
			}), func() {}
		},
		"deaf": func() (serving.Predictor, func()) { // ignores its context until released
			release := make(chan struct{})
			return servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
				<-release
				return nil, errors.New("released")
			}), func() { close(release) }
		},
		"panicking": func() (serving.Predictor, func()) {
			return servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
				panic("challenger bug")
			}), func() {}
		},
		"erroring": func() (serving.Predictor, func()) {
			return servingtest.Failing(serving.Errorf(serving.Unavailable, "challenger down")), func() {}
		},
		"nil answer": func() (serving.Predictor, func()) {
			return servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { return nil, nil }), func() {}
		},
	}
}

func mustTensor(name string, shape []int64, data []float32) serving.Tensor {
	t, err := serving.NewTensor(name, shape, data)
	if err != nil {
		panic(err)
	}
	return t
}

// The primary's answers and errors are the same with and without a shadow,
// whatever the challenger does.
func TestShadowNeverChangesThePrimary(t *testing.T) {
	primary := servingtest.Linear(4)
	reqs := []*serving.Request{
		servingtest.Rows(4, 1, 0), servingtest.Rows(4, 5, -3),
		{Model: "linear", Inputs: []serving.Tensor{mustTensor("x", []int64{1, 3}, []float32{1, 2, 3})}}, // wrong width: an error
	}
	for name, mk := range badChallengers() {
		t.Run(name, func(t *testing.T) {
			challenger, release := mk()
			s, err := rollout.NewShadow(challenger, rollout.WithMirrorTimeout(20*time.Millisecond), rollout.WithMaxMirrors(64))
			if err != nil {
				t.Fatal(err)
			}
			shadowed := s.Middleware()(primary)
			for i := range 20 {
				req := reqs[i%len(reqs)]
				want, wantErr := primary.Predict(context.Background(), req)
				got, gotErr := shadowed.Predict(context.Background(), req)
				if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
					t.Fatalf("request %d: got (%v, %v), want (%v, %v)", i, got, gotErr, want, wantErr)
				}
			}
			release()
			snap := drain(t, s)
			if snap.Mirrored+snap.Dropped != 20 || snap.Completed != snap.Mirrored {
				t.Errorf("mirrored %d dropped %d completed %d, want 20 in all, all completed", snap.Mirrored, snap.Dropped, snap.Completed)
			}
			if snap.Primary.ErrorsByCode["invalid_argument"] == 0 {
				t.Errorf("primary errors %v, want invalid_argument counted", snap.Primary.ErrorsByCode)
			}
		})
	}
}

// What each failing challenger leaves in the snapshot.
func TestShadowCountsChallengerFailures(t *testing.T) {
	for name, want := range map[string]struct {
		code     string
		timedOut bool
		panicked bool
	}{
		"hanging":    {"deadline_exceeded", true, false},
		"panicking":  {"internal", false, true},
		"erroring":   {"unavailable", false, false},
		"nil answer": {"internal", false, false},
	} {
		t.Run(name, func(t *testing.T) {
			challenger, _ := badChallengers()[name]()
			s, err := rollout.NewShadow(challenger, rollout.WithMirrorTimeout(10*time.Millisecond), rollout.WithMaxMirrors(64))
			if err != nil {
				t.Fatal(err)
			}
			p := s.Middleware()(servingtest.Linear(4))
			for range 10 {
				if _, err := p.Predict(context.Background(), servingtest.Rows(4, 2, 0)); err != nil {
					t.Fatal(err)
				}
			}
			snap := drain(t, s)
			if snap.Completed != 10 || snap.Pairs != 0 || snap.Shadow.Errors != 10 || snap.Shadow.ErrorsByCode[want.code] != 10 {
				t.Errorf("completed %d pairs %d errors %v, want 10 0 {%s: 10}", snap.Completed, snap.Pairs, snap.Shadow.ErrorsByCode, want.code)
			}
			if snap.Shadow.ErrorRate != 1 || snap.Primary.ErrorRate != 0 || snap.ErrorRateDiff != 1 {
				t.Errorf("error rates %v %v diff %v, want 1 0 1", snap.Shadow.ErrorRate, snap.Primary.ErrorRate, snap.ErrorRateDiff)
			}
			if (snap.TimedOut == 10) != want.timedOut || (snap.Panicked == 10) != want.panicked {
				t.Errorf("timed out %d panicked %d", snap.TimedOut, snap.Panicked)
			}
		})
	}
}

// A challenger that answers after the deadline, ignoring its context,
// counts as timed out, and its answer is not compared.
func TestShadowLateAnswerIsATimeout(t *testing.T) {
	slow := servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		time.Sleep(30 * time.Millisecond)
		return servingtest.Linear(4).Predict(context.Background(), req)
	})
	s := newShadow(t, slow, rollout.WithMirrorTimeout(5*time.Millisecond))
	if _, err := s.Middleware()(servingtest.Linear(4)).Predict(context.Background(), servingtest.Rows(4, 1, 0)); err != nil {
		t.Fatal(err)
	}
	snap := drain(t, s)
	if snap.TimedOut != 1 || snap.Pairs != 0 || snap.Shadow.ErrorsByCode["deadline_exceeded"] != 1 {
		t.Errorf("timed out %d pairs %d errors %v, want 1 0 {deadline_exceeded: 1}", snap.TimedOut, snap.Pairs, snap.Shadow.ErrorsByCode)
	}
}

// blocking is a challenger that holds every request until released, and
// reports each arrival.
type blocking struct {
	arrived chan *serving.Request
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{arrived: make(chan *serving.Request, 100), release: make(chan struct{})}
}

func (b *blocking) Predict(_ context.Context, req *serving.Request) (*serving.Response, error) {
	b.arrived <- req
	<-b.release
	return servingtest.Linear(4).Predict(context.Background(), req)
}

// The primary returns while its mirror is still running, and when every
// slot is taken further requests are dropped and counted, never queued.
func TestShadowSaturationDrops(t *testing.T) {
	ch := newBlocking()
	s := newShadow(t, ch, rollout.WithMaxMirrors(2), rollout.WithMirrorQueue(0))
	p := s.Middleware()(servingtest.Linear(4))
	for range 10 {
		if _, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0)); err != nil {
			t.Fatal(err)
		}
	}
	<-ch.arrived
	<-ch.arrived
	snap := s.Snapshot()
	if snap.Sampled != 10 || snap.Mirrored != 2 || snap.Dropped != 8 || snap.InFlight != 2 || snap.Completed != 0 {
		t.Errorf("sampled %d mirrored %d dropped %d in flight %d completed %d, want 10 2 8 2 0",
			snap.Sampled, snap.Mirrored, snap.Dropped, snap.InFlight, snap.Completed)
	}
	close(ch.release)
	snap = drain(t, s)
	if snap.Completed != 2 || snap.Pairs != 2 || snap.InFlight != 0 {
		t.Errorf("completed %d pairs %d in flight %d, want 2 2 0", snap.Completed, snap.Pairs, snap.InFlight)
	}
}

// The caller may reuse its request and response buffers once Predict
// returns: the mirror and the comparison work on copies.
func TestShadowCopiesWhatItKeeps(t *testing.T) {
	ch := newBlocking()
	s := newShadow(t, ch)
	p := s.Middleware()(servingtest.Linear(4))
	x := []float32{1, 2, 3, 4}
	in := mustTensor("x", []int64{1, 4}, x)
	req := &serving.Request{Model: "linear", Version: "7", Inputs: []serving.Tensor{in}}
	resp, err := p.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		x[i] = -100 // the caller reuses its buffer
	}
	y, _ := serving.Values[float32](resp.Outputs[0])
	for i := range y {
		y[i] = 0 // and scribbles on the answer
	}
	mirrored := <-ch.arrived
	got, _ := serving.Values[float32](mirrored.Inputs[0])
	if !reflect.DeepEqual(got, []float32{1, 2, 3, 4}) || mirrored.Version != "" {
		t.Errorf("the challenger got %v version %q, want [1 2 3 4] and no version", got, mirrored.Version)
	}
	close(ch.release)
	snap := drain(t, s)
	if o, ok := snap.Output("y"); !ok || o.Agreed != o.Decisions || o.MaxAbsDiff != 0 {
		t.Errorf("output y: %+v, want full agreement and no difference", o)
	}
}

// Comparison numbers over several pairs, from crafted answers.
func TestShadowSnapshotNumbers(t *testing.T) {
	// The primary scores 4 rows and has 3 classes per row; the challenger
	// differs on exactly known elements.
	md := serving.Metadata{Name: "m", Version: "1"}
	primary := servingtest.Static(
		mustTensor("score", []int64{4, 1}, []float32{0.1, 0.6, 0.9, 0.4}),
		mustTensor("probs", []int64{2, 3}, []float32{0.5, 0.3, 0.2, 0.1, 0.1, 0.8}),
	).WithMetadata(md)
	challenger := servingtest.Static(
		mustTensor("score", []int64{4, 1}, []float32{0.1, 0.4, 0.9, 0.4}),           // row 1 flips: 3 of 4 agree
		mustTensor("probs", []int64{2, 3}, []float32{0.2, 0.3, 0.5, 0.1, 0.1, 0.8}), // row 0 flips: 1 of 2 agree
		mustTensor("extra", []int64{1}, []float32{1}),                               // ignored: the primary has none
	)
	s := newShadow(t, challenger, rollout.WithChallengerVersion("2"), rollout.WithMaxMirrors(64))
	p := s.Middleware()(primary)
	const n = 5
	for range n {
		if _, err := p.Predict(context.Background(), &serving.Request{Model: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	snap := drain(t, s)
	if snap.Challenger != "2" || snap.Pairs != n || snap.Completed != n || snap.Sampled != n || snap.Percent != 100 {
		t.Fatalf("snapshot %+v", snap)
	}
	if len(snap.Outputs) != 2 || snap.Outputs[0].Name != "probs" || snap.Outputs[1].Name != "score" {
		t.Fatalf("outputs %+v, want probs and score, sorted", snap.Outputs)
	}
	d := func(a, b float32) float64 { return float64(a) - float64(b) }
	probs, score := snap.Outputs[0], snap.Outputs[1]
	if probs.Rule != "argmax" || probs.Decisions != 2*n || probs.Agreed != n || probs.Agreement != 0.5 ||
		probs.Elements != 6*n || probs.MaxAbsDiff != d(0.5, 0.2) || probs.MeanAbsDiff != 2*d(0.5, 0.2)/6 ||
		probs.MaxRelDiff != d(0.5, 0.2)/0.5 {
		t.Errorf("probs %+v", probs)
	}
	if score.Rule != "threshold(0.5)" || score.Decisions != 4*n || score.Agreed != 3*n || score.Agreement != 0.75 ||
		score.MaxAbsDiff != d(0.6, 0.4) || score.MeanAbsDiff != d(0.6, 0.4)/4 || score.Mismatched != 0 {
		t.Errorf("score %+v", score)
	}
	if rate, pairs, ok := snap.MinAgreement(); !ok || rate != 0.5 || pairs != n {
		t.Errorf("MinAgreement %v %d %v, want 0.5 %d true", rate, pairs, ok, n)
	}
	if snap.Primary.P50 <= 0 || snap.Shadow.P99 < snap.Shadow.P50 {
		t.Errorf("latencies %+v %+v", snap.Primary, snap.Shadow)
	}
}

// WithComparison overrides the automatic rule per output.
func TestShadowComparisonOption(t *testing.T) {
	primary := servingtest.Static(mustTensor("y", []int64{1, 2}, []float32{1, 2}))
	challenger := servingtest.Static(mustTensor("y", []int64{1, 2}, []float32{1.001, 2.5}))
	s := newShadow(t, challenger, rollout.WithComparison("y", rollout.Tolerance(0.01, 0)))
	if _, err := s.Middleware()(primary).Predict(context.Background(), &serving.Request{}); err != nil {
		t.Fatal(err)
	}
	o, _ := drain(t, s).Output("y")
	if o.Rule != "tolerance(0.01,0)" || o.Decisions != 2 || o.Agreed != 1 {
		t.Errorf("y: %+v, want tolerance(0.01,0) 1 of 2", o)
	}
}

func TestShadowPercent(t *testing.T) {
	ch := servingtest.Linear(4)
	s := newShadow(t, ch, rollout.WithMirrorPercent(0), rollout.WithMaxMirrors(1000))
	p := s.Middleware()(servingtest.Linear(4))
	req := servingtest.Rows(4, 1, 0)
	for range 100 {
		p.Predict(context.Background(), req)
	}
	if snap := s.Snapshot(); snap.Sampled != 0 {
		t.Fatalf("0 %%: sampled %d", snap.Sampled)
	}
	if err := s.SetPercent(25); err != nil {
		t.Fatal(err)
	}
	const n = 20_000
	for range n {
		p.Predict(context.Background(), req)
	}
	// Binomial(20000, 0.25): σ ≈ 61; allow 8σ.
	snap := drain(t, s)
	if snap.Percent != 25 || snap.Sampled < n/4-500 || snap.Sampled > n/4+500 {
		t.Errorf("25 %%: sampled %d of %d (percent %v)", snap.Sampled, n, snap.Percent)
	}
	if err := s.SetPercent(101); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("SetPercent(101): %v, want invalid_argument", err)
	}
}

func TestNewShadowRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string][]rollout.ShadowOption{
		"percent":    {rollout.WithMirrorPercent(-1)},
		"mirrors":    {rollout.WithMaxMirrors(0)},
		"timeout":    {rollout.WithMirrorTimeout(0)},
		"comparison": {rollout.WithComparison("y", rollout.Tolerance(-1, 0))},
		"default":    {rollout.WithComparison("", rollout.Threshold(float64(nanf())))},
	} {
		if _, err := rollout.NewShadow(servingtest.Linear(1), opts...); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("%s: %v, want invalid_argument", name, err)
		}
	}
	if _, err := rollout.NewShadow(nil); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("nil challenger: %v", err)
	}
}

func nanf() float32 { z := float32(0); return z / z }

// Close stops mirroring, waits for the mirrors and is idempotent; a
// challenger that ignores its context makes Shutdown give up with
// ErrShadowStuck, and the mirror ends when the challenger returns.
func TestShadowClose(t *testing.T) {
	ch := newBlocking()
	s, err := rollout.NewShadow(ch)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Middleware()(servingtest.Linear(4))
	if _, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0)); err != nil {
		t.Fatal(err)
	}
	<-ch.arrived
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, rollout.ErrShadowStuck) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck challenger: %v, want ErrShadowStuck", err)
	}
	// Closed: the primary still answers, nothing more is mirrored.
	if _, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0)); err != nil {
		t.Fatal(err)
	}
	close(ch.release)
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if snap := s.Snapshot(); snap.Mirrored != 1 || snap.Completed != 1 || snap.Sampled != 1 {
		t.Errorf("mirrored %d completed %d sampled %d, want 1 1 1", snap.Mirrored, snap.Completed, snap.Sampled)
	}
}

// Many callers at once, under -race: counts add up.
func TestShadowConcurrent(t *testing.T) {
	s := newShadow(t, servingtest.Linear(4), rollout.WithMaxMirrors(4))
	p := s.Middleware()(servingtest.Linear(4))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := p.Predict(context.Background(), servingtest.Rows(4, 2, 1)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	snap := drain(t, s)
	if snap.Sampled != 1600 || snap.Mirrored+snap.Dropped != 1600 || snap.Pairs != snap.Mirrored {
		t.Errorf("sampled %d mirrored %d dropped %d pairs %d", snap.Sampled, snap.Mirrored, snap.Dropped, snap.Pairs)
	}
	if o, _ := snap.Output("y"); o.Agreement != 1 || o.Decisions != 2*snap.Pairs {
		t.Errorf("y %+v, want full agreement over 2 rows a pair", o)
	}
}

// A primary that answers nothing and no error is passed through as is and
// counted as failing; the layer never dereferences its answer.
func TestShadowNilPrimaryAnswer(t *testing.T) {
	s := newShadow(t, servingtest.Linear(4), rollout.WithMaxMirrors(8))
	nothing := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { return nil, nil })
	resp, err := s.Middleware()(nothing).Predict(context.Background(), servingtest.Rows(4, 1, 0))
	if resp != nil || err != nil {
		t.Fatalf("got (%v, %v), want the primary's (nil, nil)", resp, err)
	}
	snap := drain(t, s)
	if snap.Completed != 1 || snap.Pairs != 0 || snap.Primary.ErrorsByCode["internal"] != 1 {
		t.Errorf("snapshot %+v, want one completed mirror with the primary failing", snap)
	}
}

// The queue holds mirrors while every runner is busy. Shutdown lets them
// run; Close drops them.
func TestShadowQueue(t *testing.T) {
	setup := func(t *testing.T) (*rollout.Shadow, *blocking) {
		ch := newBlocking()
		s, err := rollout.NewShadow(ch, rollout.WithMaxMirrors(1), rollout.WithMirrorQueue(2))
		if err != nil {
			t.Fatal(err)
		}
		p := s.Middleware()(servingtest.Linear(4))
		for range 5 {
			if _, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0)); err != nil {
				t.Fatal(err)
			}
		}
		<-ch.arrived // one runs; two wait; two were dropped
		snap := s.Snapshot()
		if snap.Mirrored != 1 || snap.Dropped != 2 || snap.InFlight != 3 || snap.Queued != 2 {
			t.Fatalf("mirrored %d dropped %d in flight %d queued %d, want 1 2 3 2", snap.Mirrored, snap.Dropped, snap.InFlight, snap.Queued)
		}
		return s, ch
	}
	t.Run("Shutdown", func(t *testing.T) {
		s, ch := setup(t)
		done := make(chan error)
		go func() { done <- s.Shutdown(context.Background()) }()
		close(ch.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if snap := s.Snapshot(); snap.Completed != 3 || snap.Pairs != 3 || snap.Dropped != 2 || snap.Active {
			t.Errorf("after Shutdown: %+v, want the 3 admitted mirrors completed", snap)
		}
	})
	t.Run("Close", func(t *testing.T) {
		s, ch := setup(t)
		done := make(chan error)
		go func() { done <- s.Close() }()
		// Close drops the queue first.
		poll.Until(t, "Close to drop the queue", func() bool { return s.Snapshot().Queued == 0 })
		close(ch.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if snap := s.Snapshot(); snap.Completed != 1 || snap.Dropped != 4 {
			t.Errorf("after Close: %+v, want 1 completed, 4 dropped", snap)
		}
	})
}

// An idle Shadow sleeps with no ticker, and the next mirror wakes it: a
// server with a shadow and no traffic costs no wake-ups, and mirrors after a
// quiet spell still run.
func TestShadowSleepsWhenIdle(t *testing.T) {
	s := newShadow(t, servingtest.Linear(4))
	p := s.Middleware()(servingtest.Linear(4))
	for round := 1; round <= 3; round++ {
		poll.Until(t, "the dispatcher to go to sleep", s.Idle)
		if _, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0)); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, fmt.Sprintf("round %d: the mirror queued after an idle spell to run", round),
			func() bool { return s.Snapshot().Completed >= int64(round) })
	}
}

// The rule on serving.Middleware: the shadow layer owns the primary it
// wraps and closes it; the Shadow, shared with another chain, and its
// challenger stay open, and the Shadow keeps mirroring that chain.
func TestShadowLayerClosesThePrimaryNotTheShadow(t *testing.T) {
	challenger := servingtest.Linear(2)
	s, err := rollout.NewShadow(challenger, rollout.WithChallengerVersion("2"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	servingtest.Ownership(t, s.Middleware(), func(t *testing.T, _ serving.Predictor) {
		if err := s.Shutdown(context.Background()); err != nil { // waits for the mirror admitted
			t.Fatal(err)
		}
		if n := s.Snapshot().Pairs; n != 1 || challenger.Calls() != 1 {
			t.Errorf("after the first chain closed: %d pairs, %d challenger calls, want 1 and 1", n, challenger.Calls())
		}
	})
	if challenger.Closes() != 0 {
		t.Error("a shadow layer closed the challenger: its maker does")
	}
}

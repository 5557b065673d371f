package rollout_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rollout/rollouttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// linearThen is Linear(4) with its answer y rewritten element by element:
// f gets the answer and an index and returns the new element.
func linearThen(f func(y []float32, i int) float32) serving.Predictor {
	return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		resp, err := servingtest.Linear(4).Predict(ctx, req)
		if err != nil {
			return nil, err
		}
		y, _ := serving.Values[float32](resp.Outputs[0])
		z := make([]float32, len(y))
		for i := range y {
			z[i] = f(y, i)
		}
		out, _ := serving.NewTensor("y", resp.Outputs[0].Shape, z)
		resp.Outputs = []serving.Tensor{out}
		return resp, nil
	})
}

// biased is Linear(4) plus 10 on every element: its argmax per row agrees
// with Linear's, its values do not.
func biased() serving.Predictor {
	return linearThen(func(y []float32, i int) float32 { return y[i] + 10 })
}

// reversed is Linear(4) with each row reversed: its argmax never agrees.
func reversed() serving.Predictor {
	return linearThen(func(y []float32, i int) float32 { return y[i/4*4+3-i%4] })
}

func mirrorRouter(t *testing.T, opts ...rollout.Option) *rollout.Router {
	t.Helper()
	r := newRouter(t, "m", append([]rollout.Option{quiet}, opts...)...)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// waitPairs waits until the router's mirror has completed n mirrors.
func waitMirrored(t *testing.T, r *rollout.Router, n int64) rollout.ShadowSnapshot {
	t.Helper()
	_, s, ok := r.Mirroring()
	if !ok {
		t.Fatal("no mirror active")
	}
	waitCompleted(t, s, n)
	return s.Snapshot()
}

func TestRouterMirror(t *testing.T) {
	r := mirrorRouter(t)
	mustPut(t, r, "1", servingtest.Linear(4))
	mustPut(t, r, "2", biased())
	if err := r.Mirror("2", 100, rollout.WithMaxMirrors(64)); err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := range n {
		resp := ask(t, r, servingtest.Rows(4, 2, float32(i)))
		if resp.Version != "1" {
			t.Fatalf("answered by %q, want 1: a mirror never answers", resp.Version)
		}
	}
	snap := waitMirrored(t, r, n)
	o, _ := snap.Output("y")
	if snap.Challenger != "2" || snap.Pairs != n || o.Rule != "argmax" || o.Agreement != 1 || o.MaxAbsDiff != 10 || o.MeanAbsDiff != 10 {
		t.Errorf("snapshot %+v, output %+v: want %d pairs agreeing by argmax, every element off by 10", snap, o, n)
	}
	// Mirrors are not traffic: version 2 answered no routed request.
	st := r.Status()
	for _, v := range st.Versions {
		want := map[string]int64{"1": n, "2": 0}[v.Version]
		if v.Requests != want {
			t.Errorf("version %s: %d requests, want %d", v.Version, v.Requests, want)
		}
	}
	if st.Shadow == nil || st.Shadow.Pairs != n {
		t.Errorf("Status().Shadow = %+v, want the comparison", st.Shadow)
	}

	// Pinned requests and requests version 2 answers are not mirrored.
	ask(t, r, &serving.Request{Model: "m", Version: "1", Inputs: servingtest.Rows(4, 1, 0).Inputs})
	if err := r.SetWeights(map[string]float64{"2": 100}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if resp := ask(t, r, servingtest.Rows(4, 1, 0)); resp.Version != "2" {
			t.Fatalf("answered by %q, want 2", resp.Version)
		}
	}
	if err := r.StopMirror(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.Status().Shadow; s == nil || s.Sampled != n {
		t.Errorf("after StopMirror: %+v, want the final comparison with %d sampled", s, n)
	}
	if _, _, ok := r.Mirroring(); ok {
		t.Error("still mirroring after StopMirror")
	}
	if err := r.StopMirror(context.Background()); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("second StopMirror: %v, want invalid_argument", err)
	}
}

func TestRouterMirrorChanges(t *testing.T) {
	r := mirrorRouter(t)
	mustPut(t, r, "1", servingtest.Linear(4))
	mustPut(t, r, "2", servingtest.Linear(4))
	mustPut(t, r, "3", reversed())
	if err := r.Mirror("9", 100); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("Mirror of an unknown version: %v, want not_found", err)
	}
	if err := r.Mirror("2", 150); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Mirror at 150 %%: %v, want invalid_argument", err)
	}
	if err := r.Mirror("2", 100, rollout.WithMaxMirrors(64)); err != nil {
		t.Fatal(err)
	}
	ask(t, r, servingtest.Rows(4, 1, 0))
	waitMirrored(t, r, 1)
	_, first, _ := r.Mirroring()
	// Same version: the percentage changes, the comparison goes on.
	if err := r.Mirror("2", 0); err != nil {
		t.Fatal(err)
	}
	ask(t, r, servingtest.Rows(4, 1, 0))
	if _, s, _ := r.Mirroring(); s != first || s.Snapshot().Percent != 0 || s.Snapshot().Sampled != 1 {
		t.Errorf("Mirror(2, 0): shadow %p (was %p), snapshot %+v", s, first, s.Snapshot())
	}
	// Another version: the old mirror stops, a new one starts.
	if err := r.Mirror("3", 100, rollout.WithMaxMirrors(64)); err != nil {
		t.Fatal(err)
	}
	ask(t, r, servingtest.Rows(4, 3, 0))
	snap := waitMirrored(t, r, 1)
	if o, _ := snap.Output("y"); snap.Challenger != "3" || o.Decisions != 3 || o.Agreed != 0 {
		t.Errorf("mirror to 3: %+v, want 3 rows disagreeing", snap)
	}
	// Removing the mirrored version stops the mirror.
	if err := r.Remove(context.Background(), "3"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.Mirroring(); ok {
		t.Error("still mirroring to a removed version")
	}
	if s := r.Status().Shadow; s == nil || s.Challenger != "3" {
		t.Errorf("Status().Shadow after Remove: %+v, want the last comparison (challenger 3)", s)
	}
}

// A router that mirrors is still a conforming Predictor, and Close stops
// the mirror with it.
func TestConformanceRouterMirroring(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			r := newRouter(t, "linear", quiet)
			mustPut(t, r, "1", servingtest.Linear(4))
			mustPut(t, r, "2", servingtest.Linear(4))
			if err := r.Mirror("2", 100); err != nil {
				t.Fatal(err)
			}
			return r
		},
		Request:       func() *serving.Request { return servingtest.Rows(4, 2, 1) },
		Deterministic: true,
	})
	r := newRouter(t, "m", quiet)
	mustPut(t, r, "1", servingtest.Linear(4))
	mustPut(t, r, "2", servingtest.Linear(4))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Mirror("2", 100); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Mirror after Close: %v, want ErrClosed", err)
	}
}

// MinAgreement holds a plan until enough pairs were compared, then lets an
// agreeing canary through and rolls a disagreeing one back.
func TestMinAgreementGuard(t *testing.T) {
	for _, tc := range []struct {
		name   string
		canary serving.Predictor
		want   rollout.PlanState
	}{
		{"agreeing", biased(), rollout.PlanSucceeded},
		{"disagreeing", reversed(), rollout.PlanRolledBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := rollouttest.NewClock(time.Unix(0, 0))
			r := mirrorRouter(t, rollout.WithClock(clock))
			mustPut(t, r, "1", servingtest.Linear(4))
			mustPut(t, r, "2", tc.canary)
			err := r.Start(rollout.Plan{
				Canary:   "2",
				Steps:    []rollout.Step{{Weight: 10, Hold: time.Minute}},
				Guards:   []rollout.Guard{rollout.MinAgreement(0.99, 20)},
				Interval: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(10 * time.Second)
			if p := r.Status().Plan; p.State != rollout.PlanRunning || !strings.Contains(p.Waiting, "no mirror") {
				t.Fatalf("plan without a mirror: %+v, want running and waiting for one", p)
			}
			if err := r.Mirror("2", 100, rollout.WithMaxMirrors(64)); err != nil {
				t.Fatal(err)
			}
			sent := int64(0)
			for sent < 40 { // routed: about 90 % reach version 1 and are mirrored
				if resp := ask(t, r, servingtest.Rows(4, 1, float32(sent))); resp.Version == "1" {
					sent++
				}
			}
			waitMirrored(t, r, sent)
			clock.Advance(10 * time.Second)
			clock.Advance(time.Minute)
			p := r.Status().Plan
			if p.State != tc.want {
				t.Fatalf("plan %+v, want %s", p, tc.want)
			}
			if tc.want == rollout.PlanRolledBack && !strings.Contains(p.Reason, "shadow agreement 0.0000 < 0.9900") {
				t.Errorf("reason %q, want the agreement named", p.Reason)
			}
		})
	}
}

// The seed's sequence on one router under concurrent load: mirror to green,
// shift gradually, switch, roll back; no request fails and every answer
// names the version that gave it.
func TestSeedSequence(t *testing.T) {
	clock := rollouttest.NewClock(time.Unix(0, 0))
	r := mirrorRouter(t, rollout.WithClock(clock))
	var g registry
	mustPut(t, r, "1", g.add("1"))
	mustPut(t, r, "2", g.add("2"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	var answered atomic.Int64
	for c := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := r.Predict(context.Background(), keyed(string(rune('a'+c))+string(rune(i%50))))
				if err != nil {
					t.Errorf("request failed: %v", err)
					return
				}
				if _, err := g.who(resp); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[resp.Version]++
				mu.Unlock()
				answered.Add(1)
			}
		})
	}
	// Traffic flows in each state: 16 answers after a step, so at least 8
	// of them were asked after it (8 clients, one request each at a time).
	step := func(what string, f func() error) {
		t.Helper()
		n := answered.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		poll.Until(t, "answers after "+what, func() bool { return answered.Load() >= n+16 })
	}
	step("mirror", func() error { return r.Mirror("2", 100, rollout.WithComparison("", rollout.Exact())) })
	poll.Until(t, "mirrored pairs compared", func() bool { s := r.Status().Shadow; return s != nil && s.Pairs > 0 })
	step("plan", func() error {
		return r.Start(rollout.Plan{Canary: "2", Steps: []rollout.Step{{Weight: 1}, {Weight: 5}, {Weight: 25}, {Weight: 50}}, Interval: time.Second})
	})
	for range 4 {
		step("advance", func() error { clock.Advance(time.Second); return nil })
	}
	if p := r.Status().Plan; p.State != rollout.PlanSucceeded || r.Weights()["2"] != 100 {
		t.Fatalf("plan %+v, weights %v: want succeeded, 2 at 100 %%", p, r.Weights())
	}
	step("stop mirror", func() error { return r.StopMirror(context.Background()) })
	step("switch", func() error { return r.Switch("1") })
	step("rollback", r.Rollback)
	close(stop)
	wg.Wait()
	if w := r.Weights(); w["2"] != 100 {
		t.Errorf("after rollback: weights %v, want 2 at 100 %%", w)
	}
	if seen["1"] == 0 || seen["2"] == 0 {
		t.Errorf("answers by version %v, want both", seen)
	}
	if s := r.Status().Shadow; s == nil || s.Pairs == 0 {
		t.Errorf("shadow %+v, want pairs compared", s)
	}
}

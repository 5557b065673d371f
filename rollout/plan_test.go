package rollout_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rollout/rollouttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// planFixture is a router with a stable version 1 at 100 % and a canary
// version 2 whose answers fail while broken is set, on a hand-stepped clock.
type planFixture struct {
	r      *rollout.Router
	clk    *rollouttest.Clock
	broken atomic.Bool
	n      int
}

func newPlanFixture(t *testing.T) *planFixture {
	f := &planFixture{clk: rollouttest.NewClock(epoch)}
	f.r = newRouter(t, "fraud", quiet, rollout.WithClock(f.clk))
	t.Cleanup(func() { f.r.Close() })
	mustPut(t, f.r, "1", servingtest.Static())
	mustPut(t, f.r, "2", servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if f.broken.Load() {
			return nil, serving.Errorf(serving.Internal, "canary bug")
		}
		return &serving.Response{Version: req.Version}, nil
	}))
	return f
}

// traffic sends n keyed requests; failures are expected while broken.
func (f *planFixture) traffic(n int) {
	for range n {
		f.n++
		f.r.Predict(context.Background(), &serving.Request{Model: "fraud", Key: "user-" + strconv.Itoa(f.n)})
	}
}

func (f *planFixture) plan(t *testing.T) *rollout.PlanStatus {
	t.Helper()
	p := f.r.Status().Plan
	if p == nil {
		t.Fatal("Status has no plan")
	}
	return p
}

func (f *planFixture) expect(t *testing.T, state rollout.PlanState, step int, weights map[string]float64) {
	t.Helper()
	p := f.plan(t)
	if p.State != state || p.Step != step {
		t.Fatalf("plan %s at step %d (waiting %q, reason %q), want %s at step %d", p.State, p.Step, p.Waiting, p.Reason, state, step)
	}
	if got := f.r.Weights(); !equalWeights(got, weights) {
		t.Fatalf("weights %v, want %v", got, weights)
	}
}

func equalWeights(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var steps = []rollout.Step{{Weight: 10, Hold: time.Minute}, {Weight: 50, Hold: 2 * time.Minute}}

func guards() []rollout.Guard {
	return []rollout.Guard{rollout.MinRequests(5), rollout.MaxErrorRate(0.05)}
}

func TestPlanAdvancesWhileGuardsHold(t *testing.T) {
	f := newPlanFixture(t)
	err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps, Guards: guards(), Interval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.expect(t, rollout.PlanRunning, 0, map[string]float64{"1": 90, "2": 10})
	if p := f.plan(t); p.Stable != "1" || !p.Started.Equal(epoch) {
		t.Errorf("plan status %+v", p)
	}

	// No traffic: the guards cannot judge, the step holds past its hold.
	f.clk.Advance(90 * time.Second)
	f.expect(t, rollout.PlanRunning, 0, map[string]float64{"1": 90, "2": 10})
	if w := f.plan(t).Waiting; !strings.Contains(w, "answered 0 of 5") {
		t.Errorf("Waiting %q, want MinRequests' message", w)
	}

	// Traffic: the next check passes and, the hold being over, advances.
	f.traffic(400)
	f.clk.Advance(10 * time.Second)
	f.expect(t, rollout.PlanRunning, 1, map[string]float64{"1": 50, "2": 50})
	if p := f.plan(t); p.Waiting != "" || !p.StepStarted.Equal(epoch.Add(100*time.Second)) {
		t.Errorf("after advancing: %+v", p)
	}

	// The new step is judged on its own traffic and held for 2 minutes.
	f.clk.Advance(10 * time.Second)
	if w := f.plan(t).Waiting; !strings.Contains(w, "answered 0 of 5") {
		t.Errorf("Waiting %q at the start of step 1, want counts since the step began", w)
	}
	f.traffic(100)
	f.clk.Advance(time.Minute)
	f.expect(t, rollout.PlanRunning, 1, map[string]float64{"1": 50, "2": 50})
	f.clk.Advance(time.Minute)
	f.expect(t, rollout.PlanSucceeded, 1, map[string]float64{"2": 100})
	if p := f.plan(t); p.Weight != 100 || !p.Ended.Equal(epoch.Add(220*time.Second)) || p.Reason != "every step passed" {
		t.Errorf("finished plan %+v", p)
	}
	if f.clk.Pending() != 0 {
		t.Errorf("%d timers left after the plan ended", f.clk.Pending())
	}

	// The whole plan was one change: Rollback restores what was before it.
	if st := f.r.Status(); st.Rollbacks != 1 || !equalWeights(st.RollbackTo, map[string]float64{"1": 100}) {
		t.Errorf("Status: %d rollbacks to %v, want 1 to 1:100", st.Rollbacks, st.RollbackTo)
	}
	if err := f.r.Rollback(); err != nil {
		t.Fatal(err)
	}
	if w := f.r.Weights(); !equalWeights(w, map[string]float64{"1": 100}) {
		t.Errorf("after Rollback: %v", w)
	}
}

func TestPlanRollsBackWhenGuardFails(t *testing.T) {
	f := newPlanFixture(t)
	if err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps, Guards: guards(), Interval: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	f.traffic(200)
	f.clk.Advance(10 * time.Second)
	f.expect(t, rollout.PlanRunning, 0, map[string]float64{"1": 90, "2": 10})

	f.broken.Store(true)
	f.traffic(400)
	f.clk.Advance(10 * time.Second)
	f.expect(t, rollout.PlanRolledBack, 0, map[string]float64{"1": 100})
	p := f.plan(t)
	if !strings.Contains(p.Reason, `canary "2" error rate`) || !p.Ended.Equal(epoch.Add(20*time.Second)) {
		t.Errorf("rolled back with reason %q at %v", p.Reason, p.Ended)
	}
	if p.Weight != 0 {
		t.Errorf("canary weight after rollback %v", p.Weight)
	}
	// The plan is undone as a whole: nothing left to roll back.
	if err := f.r.Rollback(); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Rollback after a rolled back plan: %v", err)
	}
	if f.clk.Pending() != 0 {
		t.Errorf("%d timers left", f.clk.Pending())
	}
	// Routed traffic is back on the stable version at once.
	for i := range 100 {
		if v := route(t, f.r, "user-"+strconv.Itoa(i)); v != "1" {
			t.Fatalf("key routed to %q after rollback", v)
		}
	}
}

func TestPlanControls(t *testing.T) {
	f := newPlanFixture(t)
	start := func() {
		t.Helper()
		if err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps, Interval: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	start()
	if err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps}); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("second Start: %v", err)
	}

	// Paused: holds, however long.
	if err := f.r.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Pause(); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Pause of a paused plan: %v", err)
	}
	f.clk.Advance(10 * time.Minute)
	f.expect(t, rollout.PlanPaused, 0, map[string]float64{"1": 90, "2": 10})

	// Resumed: the step's hold starts again.
	if err := f.r.Resume(); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(50 * time.Second)
	f.expect(t, rollout.PlanRunning, 0, map[string]float64{"1": 90, "2": 10})
	f.clk.Advance(10 * time.Second)
	f.expect(t, rollout.PlanRunning, 1, map[string]float64{"1": 50, "2": 50})

	// Abort: back to the stable version.
	if err := f.r.Abort(); err != nil {
		t.Fatal(err)
	}
	f.expect(t, rollout.PlanAborted, 1, map[string]float64{"1": 100})
	if err := f.r.Abort(); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Abort with no plan: %v", err)
	}

	// Promote: the canary takes everything now.
	start()
	if err := f.r.Promote(); err != nil {
		t.Fatal(err)
	}
	f.expect(t, rollout.PlanSucceeded, 0, map[string]float64{"2": 100})
	if f.plan(t).Reason != "promoted" {
		t.Errorf("reason %q", f.plan(t).Reason)
	}

	// A manual change takes over from a running plan.
	if err := f.r.Start(rollout.Plan{Canary: "1", Steps: steps}); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Switch("2"); err != nil {
		t.Fatal(err)
	}
	f.expect(t, rollout.PlanAborted, 0, map[string]float64{"2": 100})
	if !strings.Contains(f.plan(t).Reason, "Switch") {
		t.Errorf("reason %q", f.plan(t).Reason)
	}
	if f.clk.Pending() != 0 {
		t.Errorf("%d timers left", f.clk.Pending())
	}
}

func TestPlanValidation(t *testing.T) {
	f := newPlanFixture(t)
	for name, p := range map[string]rollout.Plan{
		"no steps":     {Canary: "2"},
		"decreasing":   {Canary: "2", Steps: []rollout.Step{{Weight: 50}, {Weight: 10}}},
		"zero weight":  {Canary: "2", Steps: []rollout.Step{{Weight: 0}}},
		"too fine":     {Canary: "2", Steps: []rollout.Step{{Weight: 1.25}}},
		"negative":     {Canary: "2", Steps: []rollout.Step{{Weight: 1, Hold: -time.Second}}},
		"nil guard":    {Canary: "2", Steps: steps, Guards: []rollout.Guard{nil}},
		"same version": {Canary: "1", Stable: "1", Steps: steps},
	} {
		if err := f.r.Start(p); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("%s: %v, want invalid_argument", name, err)
		}
	}
	if err := f.r.Start(rollout.Plan{Canary: "3", Steps: steps}); serving.CodeOf(err) != serving.NotFound {
		t.Errorf("unknown canary: %v", err)
	}
	if err := f.r.Start(rollout.Plan{Canary: "1", Steps: steps}); err == nil {
		t.Error("a plan for the only weighted version started without a stable version")
	} else if serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("no stable: %v", err)
	}
	if f.r.Status().Plan != nil {
		t.Error("a refused plan shows in Status")
	}
}

func TestPlanVersionsCannotBeRemoved(t *testing.T) {
	f := newPlanFixture(t)
	mustPut(t, f.r, "3", servingtest.Static())
	if err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps}); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Remove(context.Background(), "2"); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("Remove of the canary: %v", err)
	}
	if err := f.r.Remove(context.Background(), "3"); err != nil {
		t.Errorf("Remove of a version outside the plan: %v", err)
	}
}

func TestGuardPanicsAndTimeouts(t *testing.T) {
	f := newPlanFixture(t)
	slow := rollout.GuardFunc(func(ctx context.Context, _ rollout.Snapshot) error {
		<-ctx.Done() // a metrics backend that does not answer
		return ctx.Err()
	})
	err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps, Guards: []rollout.Guard{slow},
		Interval: 10 * time.Second, GuardTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(10 * time.Second)
	p := f.plan(t)
	if p.State != rollout.PlanRunning || !strings.Contains(p.Waiting, "did not answer in time") {
		t.Fatalf("slow guard: %s, waiting %q", p.State, p.Waiting)
	}
	if err := f.r.Abort(); err != nil {
		t.Fatal(err)
	}

	boom := rollout.GuardFunc(func(context.Context, rollout.Snapshot) error { panic("guard bug") })
	if err := f.r.Start(rollout.Plan{Canary: "2", Steps: steps, Guards: []rollout.Guard{boom}}); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(rollout.DefaultCheckInterval)
	if p := f.plan(t); p.State != rollout.PlanRolledBack || !strings.Contains(p.Reason, "guard panicked: guard bug") {
		t.Errorf("panicking guard: %s, reason %q", p.State, p.Reason)
	}
}

func TestPlanStopsOnClose(t *testing.T) {
	clk := rollouttest.NewClock(epoch)
	r := newRouter(t, "m", quiet, rollout.WithClock(clk))
	mustPut(t, r, "1", servingtest.Static())
	mustPut(t, r, "2", servingtest.Static())
	called := make(chan struct{})
	release := make(chan struct{})
	blocking := rollout.GuardFunc(func(ctx context.Context, _ rollout.Snapshot) error {
		close(called)
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil
	})
	if err := r.Start(rollout.Plan{Canary: "2", Steps: steps, Guards: []rollout.Guard{blocking}, GuardTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	go clk.Advance(rollout.DefaultCheckInterval) // the check blocks in the guard
	<-called
	// Close cancels the guard's context and waits for the check to finish.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	p := r.Status().Plan
	if p.State != rollout.PlanAborted || p.Reason != "router closed" {
		t.Errorf("plan after Close: %s %q", p.State, p.Reason)
	}
	if clk.Pending() != 0 {
		t.Errorf("%d timers left after Close", clk.Pending())
	}
}

func TestSnapshotCountsTheStep(t *testing.T) {
	f := newPlanFixture(t)
	var got []rollout.Snapshot
	spy := rollout.GuardFunc(func(_ context.Context, s rollout.Snapshot) error {
		got = append(got, s)
		return nil
	})
	one := []rollout.Step{{Weight: 50, Hold: time.Minute}, {Weight: 60, Hold: time.Minute}}
	if err := f.r.Start(rollout.Plan{Canary: "2", Steps: one, Guards: []rollout.Guard{spy}, Interval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	f.broken.Store(true)
	f.traffic(1000)
	f.clk.Advance(time.Minute) // check 1: passes (the spy), advances
	f.traffic(10)
	f.clk.Advance(time.Minute) // check 2: step 1's own counts
	if len(got) != 2 {
		t.Fatalf("%d checks", len(got))
	}
	s0, s1 := got[0], got[1]
	if s0.Canary.Version != "2" || s0.Stable.Version != "1" || s0.Step != 0 || s0.Steps != 2 || s0.Model != "fraud" {
		t.Errorf("snapshot %+v", s0)
	}
	if s0.Canary.Requests+s0.Stable.Requests != 1000 || s0.Canary.Failures != s0.Canary.Requests || s0.Stable.Failures != 0 {
		t.Errorf("step 0 counts: canary %+v stable %+v", s0.Canary.Stats, s0.Stable.Stats)
	}
	if s0.Canary.Requests < 400 || s0.Canary.Errors[serving.Internal] != s0.Canary.Requests {
		t.Errorf("step 0 canary %+v", s0.Canary.Stats)
	}
	if s1.Canary.Requests+s1.Stable.Requests != 10 || s1.Step != 1 || s1.Canary.Weight != 60 {
		t.Errorf("step 1 counts: canary %+v stable %+v", s1.Canary, s1.Stable)
	}
}

// TestPlanOnTheRealClock runs a short plan on real timers: its checks run
// in timer goroutines, which Close must leave none of (goleak).
func TestPlanOnTheRealClock(t *testing.T) {
	r := newRouter(t, "m", quiet)
	mustPut(t, r, "1", servingtest.Static())
	mustPut(t, r, "2", servingtest.Static())
	fast := []rollout.Step{{Weight: 10}, {Weight: 20, Hold: time.Millisecond}, {Weight: 30}}
	if err := r.Start(rollout.Plan{Canary: "2", Steps: fast, Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the plan to succeed", func() bool { return r.Status().Plan.State == rollout.PlanSucceeded })
	if w := r.Weights(); w["2"] != 100 {
		t.Errorf("weights %v", w)
	}
	// A plan whose checks never end: Close stops it, once a check has run
	// (and found the plan waiting).
	if err := r.Start(rollout.Plan{Canary: "1", Steps: steps, Interval: time.Millisecond,
		Guards: []rollout.Guard{rollout.MinRequests(1 << 40)}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a check to wait for requests", func() bool { return strings.Contains(r.Status().Plan.Waiting, "answered 0 of") })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if p := r.Status().Plan; p.State != rollout.PlanAborted || !strings.Contains(p.Waiting, "answered 0 of") {
		t.Errorf("plan after Close: %+v", p)
	}
}

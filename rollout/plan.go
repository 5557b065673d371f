package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/servekit/servekit/serving"
)

// DefaultCheckInterval is how often a running plan asks its guards when
// Plan.Interval is 0.
const DefaultCheckInterval = 10 * time.Second

// Plan is a staged rollout of one version, as Argo Rollouts' canary steps:
// the canary's weight goes up step by step, each held while every guard
// holds, then the canary takes 100 %. When a guard fails, the plan rolls
// back at once.
//
//	r.Start(rollout.Plan{
//		Canary: "2",
//		Steps:  []rollout.Step{{Weight: 1, Hold: time.Minute}, {Weight: 5, Hold: 5 * time.Minute}, {Weight: 50, Hold: 10 * time.Minute}},
//		Guards: []rollout.Guard{rollout.MinRequests(200), rollout.MaxErrorRate(0.01), rollout.MaxP99(50 * time.Millisecond)},
//	})
type Plan struct {
	// Canary is the version being rolled out.
	Canary string
	// Stable is the version it replaces; empty means the version other
	// than Canary with the most weight when the plan starts. Traffic is
	// split between these two only: other versions get no weight while the
	// plan runs.
	Stable string
	// Steps are the canary's weights, in order, each not below the one
	// before, so that a sticky key never moves back to the stable version.
	Steps []Step
	// Guards are asked every Interval, in order (see Guard). With none,
	// the plan advances on time alone.
	Guards []Guard
	// Interval is the time between checks (DefaultCheckInterval when 0).
	// A step advances at the first check at or after its hold.
	Interval time.Duration
	// GuardTimeout bounds one check of all guards (Interval when 0). A
	// guard that runs out of it is inconclusive, not failed: a slow
	// metrics backend must not roll a good canary back.
	GuardTimeout time.Duration
}

// Step is one stage of a Plan: the canary's weight in percent (0.1 % steps,
// above 0, at most 100) and how long it is held, with every guard holding,
// before the next step. Hold 0 advances at the first check that passes.
type Step struct {
	Weight float64
	Hold   time.Duration
}

// PlanState says where a plan is.
type PlanState string

// The states of a plan. Running and Paused are active; the others are final.
const (
	PlanRunning    PlanState = "running"
	PlanPaused     PlanState = "paused"      // holds its weight; guards still checked
	PlanSucceeded  PlanState = "succeeded"   // every step passed, or Promote: the canary has 100 %
	PlanRolledBack PlanState = "rolled_back" // a guard failed: traffic is back on the stable version
	PlanAborted    PlanState = "aborted"     // Abort, a manual change of weights, or Close
)

// PlanStatus is what Status reports of the running plan or the last one.
type PlanStatus struct {
	Canary, Stable string
	Steps          []Step
	State          PlanState
	// Step indexes Steps: the current step, or the last one reached.
	Step int
	// Weight is the canary's weight now, or when the plan ended.
	Weight      float64
	Started     time.Time
	StepStarted time.Time
	LastCheck   time.Time // zero until the first check
	// Waiting says why the current step is not advancing: the message of
	// an inconclusive guard ("" when none).
	Waiting string
	// Ended and Reason say when and why a plan reached a final state; for
	// PlanRolledBack, Reason is the failing guard's error.
	Ended  time.Time
	Reason string
}

// Active reports whether the plan is running or paused.
func (s PlanStatus) Active() bool { return s.State == PlanRunning || s.State == PlanPaused }

// planRun is a started plan; the Router's mu guards it.
type planRun struct {
	plan   Plan
	units  []int32 // of each step
	status PlanStatus
	entry  uint64     // history id of the assignment before the plan
	pre    assignment // that assignment
	base   [2][numCodes]int64
	timer  Timer
	cancel context.CancelFunc // of a check in progress
}

func (p *Plan) validate(model string) ([]int32, error) {
	bad := func(format string, args ...any) error {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: plan: "+format, append([]any{model}, args...)...)
	}
	if len(p.Steps) == 0 {
		return nil, bad("no steps")
	}
	if p.Interval < 0 || p.GuardTimeout < 0 {
		return nil, bad("negative interval or guard timeout")
	}
	if p.Interval == 0 {
		p.Interval = DefaultCheckInterval
	}
	if p.GuardTimeout == 0 {
		p.GuardTimeout = p.Interval
	}
	if slices.Contains(p.Guards, nil) {
		return nil, bad("nil guard")
	}
	units := make([]int32, len(p.Steps))
	for i, s := range p.Steps {
		u := math.Round(s.Weight * 10)
		switch {
		case math.IsNaN(s.Weight) || u <= 0 || u > total || math.Abs(s.Weight*10-u) > 1e-6:
			return nil, bad("step %d: weight %v is not in (0, 100] in steps of 0.1", i, s.Weight)
		case i > 0 && int32(u) < units[i-1]:
			return nil, bad("step %d: weight %v is below the step before (%v): sticky keys would move back", i, s.Weight, p.Steps[i-1].Weight)
		case s.Hold < 0:
			return nil, bad("step %d: negative hold %v", i, s.Hold)
		}
		units[i] = int32(u)
	}
	p.Steps = slices.Clone(p.Steps)
	p.Guards = slices.Clone(p.Guards)
	return units, nil
}

// Start starts plan p: the canary gets the first step's weight at once.
// Only one plan runs at a time; the assignment before it is kept, so
// Rollback after the plan (or during it) restores it.
func (r *Router) Start(p Plan) error {
	units, err := p.validate(r.model)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return serving.ErrClosed
	}
	if r.plan != nil {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: a plan for version %q is %s: abort it first", r.model, r.plan.plan.Canary, r.plan.status.State)
	}
	t := r.tab.Load()
	if _, ok := t.byName[p.Canary]; !ok {
		return r.unknown(p.Canary)
	}
	if p.Stable == "" {
		if p.Stable = t.weights.heaviest(p.Canary); p.Stable == "" {
			return serving.Errorf(serving.InvalidArgument, "rollout: model %q: plan: no stable version (no other version has weight; set Plan.Stable)", r.model)
		}
	}
	if _, ok := t.byName[p.Stable]; !ok {
		return r.unknown(p.Stable)
	}
	if p.Stable == p.Canary {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: plan: canary and stable are both %q", r.model, p.Canary)
	}
	a := split(p.Stable, p.Canary, units[0])
	if err := r.servable(t, a, "Start"); err != nil {
		return err
	}
	now := r.cfg.clock.Now()
	run := &planRun{plan: p, units: units, pre: t.weights}
	run.entry = r.pushLocked(t.weights)
	run.status = PlanStatus{Canary: p.Canary, Stable: p.Stable, Steps: p.Steps, State: PlanRunning, Started: now}
	r.plan = run
	r.stepLocked(run, 0, now)
	r.cfg.log.Info("rollout: plan started", "model", r.model, "canary", p.Canary, "stable", p.Stable, "weight", p.Steps[0].Weight)
	return nil
}

// split gives the canary u units and the stable the rest.
func split(stable, canary string, u int32) assignment {
	if u == total {
		return assignment{canary: total}
	}
	return assignment{stable: total - u, canary: u}
}

// stepLocked enters step i: its weight, fresh counters, the first check.
func (r *Router) stepLocked(run *planRun, i int, now time.Time) {
	t := r.tab.Load()
	r.tab.Store(t.withWeights(split(run.plan.Stable, run.plan.Canary, run.units[i])))
	st := &run.status
	st.Step, st.StepStarted, st.Weight, st.Waiting = i, now, run.plan.Steps[i].Weight, ""
	r.baselineLocked(run)
	r.scheduleLocked(run, min(run.plan.Interval, run.plan.Steps[i].Hold))
}

// baselineLocked notes the counters at the start of a step: guards judge
// what happened since.
func (r *Router) baselineLocked(run *planRun) {
	t := r.tab.Load()
	for i, v := range []string{run.plan.Canary, run.plan.Stable} {
		if e, ok := t.byName[v]; ok {
			run.base[i] = e.stats.counts()
		}
	}
}

// scheduleLocked sets the plan's next check. r.checks counts it from now
// until it has run or been stopped, so Close can wait for a timer that has
// fired but not yet reached the lock.
func (r *Router) scheduleLocked(run *planRun, d time.Duration) {
	r.checks.Add(1)
	run.timer = r.cfg.clock.AfterFunc(d, func() {
		defer r.checks.Done()
		r.check(run)
	})
}

// check asks the guards, without holding mu (a guard may call Status, or
// take seconds over the network), then acts on the verdict unless the plan
// ended meanwhile.
func (r *Router) check(run *planRun) {
	r.mu.Lock()
	if r.closed || r.plan != run {
		r.mu.Unlock()
		return
	}
	run.timer = nil // fired
	snap := r.snapshotLocked(run)
	ctx, cancel := context.WithTimeout(context.Background(), run.plan.GuardTimeout)
	run.cancel = cancel
	r.mu.Unlock()

	failed, waiting := judge(ctx, run.plan.Guards, snap)
	cancel()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.plan != run {
		return
	}
	run.cancel = nil
	now := r.cfg.clock.Now()
	st := &run.status
	st.LastCheck = now
	switch {
	case failed != nil:
		r.endPlanLocked(PlanRolledBack, failed.Error(), true)
	case waiting != nil:
		st.Waiting = waiting.Error()
		r.scheduleLocked(run, run.plan.Interval)
	case st.State == PlanPaused:
		st.Waiting = ""
		r.scheduleLocked(run, run.plan.Interval)
	default:
		st.Waiting = ""
		hold := run.plan.Steps[st.Step].Hold
		if elapsed := now.Sub(st.StepStarted); elapsed < hold {
			r.scheduleLocked(run, min(run.plan.Interval, hold-elapsed))
			return
		}
		if st.Step+1 == len(run.units) {
			r.endPlanLocked(PlanSucceeded, "every step passed", false)
			return
		}
		r.stepLocked(run, st.Step+1, now)
		r.cfg.log.Info("rollout: plan advanced", "model", r.model, "canary", run.plan.Canary, "step", st.Step, "weight", st.Weight)
	}
}

// judge asks the guards in order. The first that fails decides; the first
// inconclusive one stops the check, so a MinRequests guard put first keeps
// the others from judging too little data. A guard that panics fails; one
// that overruns the check's deadline is inconclusive.
func judge(ctx context.Context, guards []Guard, s Snapshot) (failed, waiting error) {
	if !s.Canary.Ready {
		return nil, fmt.Errorf("%w: canary version %q is not ready", ErrInconclusive, s.Canary.Version)
	}
	for _, g := range guards {
		err := safeCheck(ctx, g, s)
		switch {
		case err == nil:
			continue
		case errors.Is(err, ErrInconclusive):
			return nil, err
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w: guard did not answer in time: %v", ErrInconclusive, err)
		}
		return err, nil
	}
	return nil, nil
}

func safeCheck(ctx context.Context, g Guard, s Snapshot) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("rollout: guard panicked: %v", p)
		}
	}()
	return g.Check(ctx, s)
}

// endPlanLocked ends the active plan, if any, in state. With restore, the
// assignment from before the plan comes back with the canary's weight given
// to the stable version, and the plan's Rollback entry is dropped (the plan
// is undone); without, the weights stay as they are.
func (r *Router) endPlanLocked(state PlanState, reason string, restore bool) {
	run := r.plan
	if run == nil {
		return
	}
	if run.timer != nil && run.timer.Stop() {
		r.checks.Done() // the check will never run
	}
	if run.cancel != nil {
		run.cancel()
	}
	t := r.tab.Load()
	if restore {
		a := make(assignment, len(run.pre))
		for v, u := range run.pre {
			if _, ok := t.byName[v]; !ok || v == run.plan.Canary {
				v = run.plan.Stable // the stable cannot be removed while the plan runs
			}
			a[v] += u
		}
		if len(a) == 0 {
			a[run.plan.Stable] = total
		}
		r.tab.Store(t.withWeights(a))
		r.history = slices.DeleteFunc(r.history, func(c change) bool { return c.id == run.entry })
	}
	st := &run.status
	st.State, st.Reason, st.Ended = state, reason, r.cfg.clock.Now()
	if state == PlanSucceeded {
		r.tab.Store(t.withWeights(assignment{run.plan.Canary: total}))
	}
	st.Weight = percent(r.tab.Load().weights[run.plan.Canary])
	final := *st
	r.last, r.plan = &final, nil
	level := r.cfg.log.Info
	if state == PlanRolledBack {
		level = r.cfg.log.Warn
	}
	level("rollout: plan "+string(state), "model", r.model, "canary", run.plan.Canary, "step", st.Step, "reason", reason)
}

// Pause holds a running plan at its current step: it does not advance, but
// its guards are still checked and a failing one still rolls back.
func (r *Router) Pause() error { return r.control(PlanRunning, "pause") }

// Resume continues a paused plan; its current step starts afresh (its hold
// and the counters guards judge restart now).
func (r *Router) Resume() error { return r.control(PlanPaused, "resume") }

// Abort stops the active plan and puts traffic back on the stable version
// (the assignment from before the plan, without the canary's weight).
func (r *Router) Abort() error { return r.control("", "abort") }

// Promote ends the active plan successfully now: the canary gets 100 %,
// skipping the remaining steps (Argo Rollouts' full promotion).
func (r *Router) Promote() error { return r.control("", "promote") }

// control applies a plan command; want is the state it requires ("" for
// any active state).
func (r *Router) control(want PlanState, cmd string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return serving.ErrClosed
	}
	run := r.plan
	if run == nil || want != "" && run.status.State != want {
		state := "no plan is active"
		if run != nil {
			state = "the plan is " + string(run.status.State)
		}
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: cannot %s: %s", r.model, cmd, state)
	}
	switch cmd {
	case "pause":
		run.status.State = PlanPaused
	case "resume":
		run.status.State = PlanRunning
		run.status.StepStarted = r.cfg.clock.Now()
		r.baselineLocked(run)
	case "abort":
		r.endPlanLocked(PlanAborted, "aborted", true)
	case "promote":
		r.endPlanLocked(PlanSucceeded, "promoted", false)
	}
	return nil
}

// stopPlanLocked ends the active plan as the router closes.
func (r *Router) stopPlanLocked() { r.endPlanLocked(PlanAborted, "router closed", false) }

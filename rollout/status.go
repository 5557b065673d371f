package rollout

import (
	"slices"
	"time"
)

// Status is a Router's state at one moment: what an admin API shows.
type Status struct {
	Model string
	// Ready is Router.Ready: routed traffic can be served.
	Ready bool
	// Versions are in the order they were added.
	Versions []VersionStatus
	// Plan is the active plan, else the last one that ended; nil if none
	// was ever started.
	Plan *PlanStatus
	// Rollbacks is how many earlier assignments Rollback can restore, and
	// RollbackTo the one it would restore next, in percent (nil if none).
	Rollbacks  int
	RollbackTo map[string]float64
	// Shadow is the comparison of the active mirror (Mirror), else of the
	// last one stopped; nil if none was ever started.
	Shadow *ShadowSnapshot
}

// VersionStatus is one version: whether it is ready, its weight in percent
// and its Stats.
type VersionStatus struct {
	Version string
	Ready   bool
	Weight  float64
	Stats
}

// Status returns the Router's state.
func (r *Router) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tab.Load()
	now := r.cfg.clock.Now()
	s := Status{Model: r.model, Ready: r.Ready(), Rollbacks: len(r.history)}
	if n := len(r.history); n > 0 {
		s.RollbackTo = r.history[n-1].w.percents()
	}
	for _, v := range t.added {
		s.Versions = append(s.Versions, versionStatus(t, v, now, nil))
	}
	var p PlanStatus
	switch {
	case r.plan != nil:
		p = r.plan.status
	case r.last != nil:
		p = *r.last
	}
	if p.State != "" {
		p.Steps = slices.Clone(p.Steps) // the caller's to keep
		s.Plan = &p
	}
	s.Shadow = r.shadowStatusLocked("")
	return s
}

// versionStatus reads version v of t; with base, counts are since base.
func versionStatus(t *table, v string, now time.Time, base *[numCodes]int64) VersionStatus {
	vs := VersionStatus{Version: v, Weight: percent(t.weights[v])}
	e, ok := t.byName[v]
	if !ok {
		return vs
	}
	if s := e.cur.Load(); s != nil {
		vs.Ready = s.ready()
	}
	var b [numCodes]int64
	if base != nil {
		b = *base
	}
	vs.Stats = e.stats.read(now, b)
	return vs
}

// Snapshot is what a Guard judges: the plan's canary and stable versions,
// with their request counts since the current step began (so a step is
// judged on its own traffic) and their latency percentiles over the stats
// window. They are the numbers the metrics export.
type Snapshot struct {
	Model       string
	Time        time.Time
	Step, Steps int // the current step's index, and how many there are
	PlanStarted time.Time
	StepStarted time.Time
	Canary      VersionStatus
	Stable      VersionStatus
	// Shadow is the comparison of a mirror to the canary (Router.Mirror),
	// active or the last one stopped, counted from when it started; nil
	// without one. MinAgreement judges it.
	Shadow *ShadowSnapshot
}

func (r *Router) snapshotLocked(run *planRun) Snapshot {
	t := r.tab.Load()
	now := r.cfg.clock.Now()
	return Snapshot{
		Model:       r.model,
		Time:        now,
		Step:        run.status.Step,
		Steps:       len(run.plan.Steps),
		PlanStarted: run.status.Started,
		StepStarted: run.status.StepStarted,
		Canary:      versionStatus(t, run.plan.Canary, now, &run.base[0]),
		Stable:      versionStatus(t, run.plan.Stable, now, &run.base[1]),
		Shadow:      r.shadowStatusLocked(run.plan.Canary),
	}
}

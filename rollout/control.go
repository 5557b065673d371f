package rollout

import (
	"slices"

	"github.com/servekit/servekit/serving"
)

// change is an assignment kept for Rollback: the one in force before a
// change. id lets a plan find its own entry again.
type change struct {
	id uint64
	w  assignment
}

// maxHistory bounds the assignments kept for Rollback.
const maxHistory = 32

// SetWeights sets the share of routed traffic of every version in percent,
// in steps of 0.1 %, summing to 100; versions not named get 0. Unknown
// versions are NotFound. An assignment that gives no weight to a ready
// version while one is ready is refused (Unavailable): it would fail every
// routed request. Weight may go to a version that is not ready yet; its
// share is served by the ready version with the most weight until it is.
// A running plan is aborted first (the caller takes over), and the
// assignment before the change is kept for Rollback unless nothing changed.
func (r *Router) SetWeights(w map[string]float64) error {
	a, err := toUnits(r.model, w)
	if err != nil {
		return err
	}
	return r.assign(a, "SetWeights")
}

// Switch sends 100 % of routed traffic to version v at once (blue-green): a
// request routed after Switch returns goes to v, one already inside the old
// version finishes there. v must be ready. Rollback switches back.
func (r *Router) Switch(v string) error {
	return r.assign(assignment{v: total}, "Switch")
}

func (r *Router) assign(a assignment, by string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return serving.ErrClosed
	}
	t := r.tab.Load()
	for _, v := range a.sortedVersions() {
		if _, ok := t.byName[v]; !ok {
			return r.unknown(v)
		}
	}
	if err := r.servable(t, a, by); err != nil {
		return err
	}
	r.endPlanLocked(PlanAborted, "superseded by "+by, false)
	r.applyLocked(t, a)
	return nil
}

// servable refuses an assignment that would leave routed traffic nowhere
// to go while a version could serve it.
func (r *Router) servable(t *table, a assignment, by string) error {
	if by == "Switch" {
		for v := range a {
			if s := t.byName[v].cur.Load(); s == nil || !s.ready() {
				return serving.Errorf(serving.Unavailable, "rollout: model %q: cannot switch to version %q: it is not ready", r.model, v)
			}
		}
		return nil
	}
	anyReady := false
	for _, e := range t.entries {
		if s := e.cur.Load(); s != nil && s.ready() {
			if a[e.name] > 0 {
				return nil
			}
			anyReady = true
		}
	}
	if anyReady {
		return serving.Errorf(serving.Unavailable, "rollout: model %q: weights %v give no traffic to a ready version", r.model, a.percents())
	}
	return nil
}

// applyLocked makes a the assignment, keeping the one before for Rollback;
// an assignment equal to the current one changes nothing.
func (r *Router) applyLocked(t *table, a assignment) {
	if a.equal(t.weights) {
		return
	}
	r.pushLocked(t.weights)
	r.tab.Store(t.withWeights(a))
}

func (r *Router) pushLocked(w assignment) uint64 {
	r.nextID++
	r.history = append(r.history, change{id: r.nextID, w: w})
	if len(r.history) > maxHistory {
		r.history = slices.Delete(r.history, 0, len(r.history)-maxHistory)
	}
	return r.nextID
}

// forgetLocked drops the kept assignments that give removed version v
// weight: they can no longer be restored.
func (r *Router) forgetLocked(v string) {
	r.history = slices.DeleteFunc(r.history, func(c change) bool { return c.w[v] > 0 })
}

// Rollback restores the assignment in force before the last change
// (SetWeights, Switch, or a whole plan), at once; calling it again steps
// further back. A running plan is aborted first, so Rollback during a plan
// restores the assignment from before the plan. With nothing to restore it
// returns an InvalidArgument error.
func (r *Router) Rollback() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return serving.ErrClosed
	}
	r.endPlanLocked(PlanAborted, "rolled back by Rollback", false)
	if len(r.history) == 0 {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: no earlier assignment to roll back to", r.model)
	}
	prev := r.history[len(r.history)-1]
	r.history = r.history[:len(r.history)-1]
	r.tab.Store(r.tab.Load().withWeights(prev.w))
	return nil
}

// Weights returns the current assignment in percent; versions without
// weight are left out.
func (r *Router) Weights() map[string]float64 { return r.tab.Load().weights.percents() }

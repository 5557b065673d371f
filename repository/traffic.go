package repository

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

// route points unversioned traffic at the versions kept (ready, ascending).
// TrafficLatest switches to the highest when it changes; both modes switch
// when no kept version would carry any weight (a fresh model, or the
// weighted version going away), so a model with a ready version is always
// reachable without a pin.
func (r *Repository) route(m *model, mode Traffic, keep []string) {
	if len(keep) == 0 {
		return
	}
	target := keep[len(keep)-1]
	r.mu.Lock()
	served := m.served
	r.mu.Unlock()
	if served != "" && (mode == TrafficManual || served == target) && carries(m.router, keep) {
		return
	}
	if err := m.router.Switch(target); err != nil {
		r.log.Error("switching traffic failed", "model", m.name, "version", target, "err", err)
		return
	}
	r.mu.Lock()
	m.served = target
	r.mu.Unlock()
	r.log.Info("traffic switched", "model", m.name, "version", target, "mode", mode)
}

// carries reports whether some kept version has routed weight.
func carries(rt *rollout.Router, keep []string) bool {
	st := rt.Status()
	for _, vs := range st.Versions {
		if vs.Weight > 0 && slices.Contains(keep, vs.Version) {
			return true
		}
	}
	return false
}

// dropExcluded unloads the versions Unload asked for when the config cannot
// be read, so an explicit unload works even then: traffic moves to the
// highest other ready version first.
func (r *Repository) dropExcluded(ctx context.Context, m *model) {
	r.mu.Lock()
	var drop []string
	var rest []*version
	for name, v := range m.versions {
		if r.excluded[m.name][name] {
			drop = append(drop, name)
		} else if v.ready {
			rest = append(rest, v)
		}
	}
	mode := TrafficLatest
	if m.cfg != nil {
		mode = m.cfg.traffic()
	}
	r.mu.Unlock()
	if len(drop) == 0 {
		return
	}
	slices.SortFunc(rest, func(a, b *version) int { return cmp.Compare(a.num, b.num) })
	keep := make([]string, len(rest))
	for i, v := range rest {
		keep[i] = strconv.FormatInt(v.num, 10)
	}
	r.route(m, mode, keep)
	r.removeVersions(ctx, m, drop)
}

// removeVersions unloads versions: each leaves the router at once and is
// closed when its in-flight requests have finished, waiting at most the
// drain timeout. The router refuses to remove a version that still carries
// traffic while others remain, or one in an active rollout plan, and
// rightly so: a plan involving one of them is aborted first, route has
// moved the traffic of TrafficLatest already, and what weight remains (a
// manual canary deleted from disk) goes to the heaviest remaining version.
func (r *Repository) removeVersions(ctx context.Context, m *model, names []string) {
	r.mu.Lock()
	for _, name := range names {
		if v := m.versions[name]; v != nil {
			v.state = StateUnloading
		}
	}
	r.mu.Unlock()
	r.abortPlanOf(m, names)
	weights := m.router.Weights()
	var light, heavy []string
	for _, name := range names {
		if weights[name] > 0 {
			heavy = append(heavy, name)
		} else {
			light = append(light, name)
		}
	}
	r.mu.Lock()
	for _, name := range names {
		if v := m.versions[name]; v == nil || !strings.HasPrefix(v.reason, "cannot unload: ") {
			r.log.Info("unloading version", "model", m.name, "version", name)
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range light {
		wg.Go(func() { r.removeVersion(ctx, m, name) })
	}
	wg.Wait()
	for i, name := range heavy {
		r.moveWeight(m, name, heavy[i+1:])
		r.removeVersion(ctx, m, name)
	}
}

// removeVersion removes one version from the router. The router may refuse
// (a version in an active rollout plan, one still carrying traffic): the
// version then keeps its state and serves on, with the refusal as its
// reason, logged once, until the operator resolves it.
func (r *Repository) removeVersion(ctx context.Context, m *model, name string) {
	log := r.log.With("model", m.name, "version", name)
	dctx, cancel := context.WithTimeout(ctx, r.cfg.drainTimeout)
	defer cancel()
	err := m.router.Remove(dctx, name)
	switch code := serving.CodeOf(err); {
	case err == nil || code == serving.NotFound:
		log.Info("version unloaded")
	case code == serving.DeadlineExceeded || code == serving.Canceled:
		log.Warn("version unloaded; it closes when its last in-flight request finishes", "err", err)
	default:
		r.mu.Lock()
		v := m.versions[name]
		reason := "cannot unload: " + err.Error()
		repeated := v != nil && v.reason == reason
		if v != nil {
			v.state, v.reason = StateFailed, reason
			if v.ready {
				v.state = StateReady
			}
		}
		r.mu.Unlock()
		if !repeated {
			log.Error("unloading version refused by the router: it stays", "err", err)
		}
		return
	}
	r.mu.Lock()
	delete(m.versions, name)
	r.mu.Unlock()
}

// abortPlanOf aborts the router's active rollout plan if it involves a
// version about to be unloaded: deleting a canary's (or its baseline's)
// files ends its rollout, as deleting the canary of an Argo Rollout does.
// The router puts traffic back on the stable version.
func (r *Repository) abortPlanOf(m *model, names []string) {
	p := m.router.Status().Plan
	if p == nil || !p.Active() || !slices.Contains(names, p.Canary) && !slices.Contains(names, p.Stable) {
		return
	}
	if err := m.router.Abort(); err != nil {
		r.log.Error("aborting the rollout plan of a version to unload failed", "model", m.name, "canary", p.Canary, "err", err)
		return
	}
	r.log.Warn("rollout plan aborted: one of its versions left the repository", "model", m.name, "canary", p.Canary, "stable", p.Stable)
}

// moveWeight gives the weight of version from to the remaining version
// (not in later, which go next) with the most weight, preferring ready
// ones, ties to the highest version.
func (r *Repository) moveWeight(m *model, from string, later []string) {
	st := m.router.Status()
	var to *rollout.VersionStatus
	for i := range st.Versions {
		vs := &st.Versions[i]
		if vs.Version == from || slices.Contains(later, vs.Version) {
			continue
		}
		if to == nil || better(vs, to) {
			to = vs
		}
	}
	if to == nil {
		return // the last version: the router lets it take its weight along
	}
	w := m.router.Weights()
	w[to.Version] += w[from]
	delete(w, from)
	if err := m.router.SetWeights(w); err != nil {
		r.log.Error("moving traffic off a version to unload failed", "model", m.name, "version", from, "to", to.Version, "err", err)
		return
	}
	r.log.Info("traffic moved off a version to unload", "model", m.name, "version", from, "to", to.Version)
}

func better(a, b *rollout.VersionStatus) bool {
	if a.Ready != b.Ready {
		return a.Ready
	}
	if a.Weight != b.Weight {
		return a.Weight > b.Weight
	}
	an, _ := strconv.ParseInt(a.Version, 10, 64)
	bn, _ := strconv.ParseInt(b.Version, 10, 64)
	return an > bn
}

// unloadModel runs with m locked: the hook hears first (so a transport stops
// routing to it), then the router closes, which closes every version once
// its in-flight requests have finished.
func (r *Repository) unloadModel(m *model) {
	r.log.Info("unloading model", "model", m.name)
	r.notify(m.name, nil)
	r.mu.Lock()
	for _, v := range m.versions {
		v.state = StateUnloading
	}
	r.mu.Unlock()
	if err := m.router.Close(); err != nil {
		r.log.Warn("closing the router", "model", m.name, "err", err)
	}
	r.mu.Lock()
	m.gone = true
	if r.models[m.name] == m {
		delete(r.models, m.name)
	}
	r.mu.Unlock()
	r.log.Info("model unloaded", "model", m.name)
}

package quality

import (
	"maps"
	"slices"
	"sync"

	"github.com/servekit/servekit/internal/observe"
)

// published is what the worker publishes for readers: per model version
// its recent windows and status, and the recent alerts.
type published struct {
	mu      sync.RWMutex
	limit   int
	byKey   map[mvKey]*pubVersion // guarded by mu
	alerts  []Alert               // guarded by mu; oldest first
	windows int64                 // guarded by mu
	nAlerts int64                 // guarded by mu
}

type pubVersion struct {
	results []Result // oldest first, at most limit
	status  Status
	changes map[Detector]int64 // detections since the start
}

func (p *published) init(limit int) {
	p.limit = limit
	p.byKey = map[mvKey]*pubVersion{}
}

func (p *published) version(k mvKey) *pubVersion {
	v := p.byKey[k]
	if v == nil {
		v = &pubVersion{}
		p.byKey[k] = v
	}
	return v
}

// result adds a window's result, or replaces the one of the same window.
func (p *published) result(k mvKey, r Result, limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.version(k)
	for i := len(v.results) - 1; i >= 0; i-- {
		if v.results[i].Window.Index == r.Window.Index {
			v.results[i] = r
			return
		}
		if v.results[i].Window.Index < r.Window.Index {
			break
		}
	}
	v.results = observe.AppendBounded(v.results, r, limit)
}

func (p *published) windowClosed() {
	p.mu.Lock()
	p.windows++
	p.mu.Unlock()
}

func (p *published) alert(a Alert, limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alerts = observe.AppendBounded(p.alerts, a, limit)
	p.nAlerts++
}

func (p *published) totals() (windows, alerts int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.windows, p.nAlerts
}

// keys lists the model versions published, sorted.
func (p *published) keys() []mvKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return observe.SortedKeys(p.byKey)
}

// publishStatus publishes a version's alarms and counts.
func (w *worker) publishStatus(tr *tracker) {
	reason, since := tr.reason()
	st := Status{
		Model: tr.key.Model, Version: tr.key.Version, Monitored: true, Estimating: tr.ref != nil,
		Alarms: tr.alarmed(), Reason: reason, Since: since,
		Predictions: tr.predictions, Labels: tr.labels,
	}
	st.Alarmed = len(st.Alarms) > 0
	for i := len(tr.changes) - 1; i >= 0 && len(st.Changes) < 10; i-- {
		st.Changes = append(st.Changes, tr.changes[i])
	}
	p := &w.m.pub
	p.mu.Lock()
	v := p.version(tr.key)
	v.status = st
	v.changes = maps.Clone(tr.nChanges)
	p.mu.Unlock()
}

// Status returns a model version's quality state. It never waits for the
// worker: it reads what the worker last published.
func (m *Monitor) Status(model, version string) Status {
	m.pub.mu.RLock()
	defer m.pub.mu.RUnlock()
	if v := m.pub.byKey[mvKey{Model: model, Version: version}]; v != nil {
		st := v.status
		st.Alarms = slices.Clone(st.Alarms)
		st.Changes = slices.Clone(st.Changes)
		return st
	}
	st := Status{Model: model, Version: version}
	if pl := m.lookup(model); pl != nil {
		st.Monitored, st.Estimating = true, pl.reference(version) != nil
	}
	return st
}

// Results returns a model version's recent windows, newest first.
func (m *Monitor) Results(model, version string) []Result {
	m.pub.mu.RLock()
	defer m.pub.mu.RUnlock()
	v := m.pub.byKey[mvKey{Model: model, Version: version}]
	if v == nil {
		return nil
	}
	out := slices.Clone(v.results)
	slices.Reverse(out)
	return out
}

// Alerts returns the recent alerts of every model version, newest first.
func (m *Monitor) Alerts() []Alert {
	m.pub.mu.RLock()
	defer m.pub.mu.RUnlock()
	out := slices.Clone(m.pub.alerts)
	slices.Reverse(out)
	return out
}

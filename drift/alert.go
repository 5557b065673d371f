package drift

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/servekit/servekit/internal/observe"
)

// AlertKind says whether an alert raises or clears alarms.
type AlertKind string

// The kinds of alerts.
const (
	// AlertRaised: at least one feature's alarm was raised in this window.
	AlertRaised AlertKind = "raised"
	// AlertCleared: alarms were cleared and none raised.
	AlertCleared AlertKind = "cleared"
)

// Alert reports a change in a model version's alarms: after the window
// whose result it carries, the features in Raised went into alarm and
// those in Cleared out of it. It is what a retraining pipeline receives
// (as JSON, from a webhook.Sender). Treat it as read-only: its slices are shared.
type Alert struct {
	Kind    AlertKind `json:"kind"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	Raised  []string  `json:"raised,omitempty"`
	Cleared []string  `json:"cleared,omitempty"`
	// Alarmed lists every feature in alarm after the window.
	Alarmed []string `json:"alarmed,omitempty"`
	// Reason says in words which features and checks alarm and why.
	Reason string `json:"reason,omitempty"`
	// CheckRaised and CheckCleared are the other checks (data quality,
	// "<feature>: <check>", and "multivariate") whose alarm the window
	// raised or cleared; Checks lists all those in alarm after it.
	CheckRaised  []string `json:"check_raised,omitempty"`
	CheckCleared []string `json:"check_cleared,omitempty"`
	Checks       []string `json:"checks,omitempty"`
	// Result is the window's full evaluation: every feature's statistics,
	// thresholds and p-values after correction, data quality, and the
	// multivariate check.
	Result Result `json:"result"`
}

// IdempotencyKey names the alert the same way on every attempt to deliver
// it, so a receiver can tell a retry from a new alert (package webhook).
func (a Alert) IdempotencyKey() string {
	return a.Model + "/" + a.Version + "/" + strconv.FormatInt(a.Result.Window.Index, 10) + "/" +
		strconv.FormatInt(a.Time.UnixNano(), 10) + "/" + string(a.Kind)
}

// Status is a model version's drift state now: what a rollout guard asks
// before promoting it.
type Status struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Monitored says a profile (or one being learned) covers the version.
	Monitored bool `json:"monitored"`
	Learning  bool `json:"learning,omitempty"`
	// Alarmed says some feature's alarm is raised; Features lists them and
	// Reason says why, Since when the first was raised.
	Alarmed  bool      `json:"alarmed"`
	Features []string  `json:"features,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Checks lists the other checks in alarm: data quality ("<feature>:
	// <check>") and "multivariate"; Reason covers them too.
	Checks []string `json:"checks,omitempty"`
	// Window is the last window evaluated (zero before the first).
	Window Window `json:"window"`
}

// Err is nil unless an alarm is raised; then it wraps ErrDrift (a
// feature's drift, or the multivariate check) or ErrDataQuality (a
// data-quality check), or both, with the reason. It lets a rollout guard
// be one line:
//
//	rollout.GuardFunc(func(ctx context.Context, s rollout.Snapshot) error {
//		return mon.Status(s.Model, s.Canary.Version).Err()
//	})
func (s Status) Err() error {
	if !s.Alarmed {
		return nil
	}
	drift := len(s.Features) > 0 || slices.Contains(s.Checks, CheckMultivariate)
	quality := len(s.Checks) > 0 && !(len(s.Checks) == 1 && s.Checks[0] == CheckMultivariate)
	switch {
	case drift && quality:
		return fmt.Errorf("%w and %w for %s: %s", ErrDrift, ErrDataQuality, modelVersion(s.Model, s.Version), s.Reason)
	case quality:
		return fmt.Errorf("%w for %s: %s", ErrDataQuality, modelVersion(s.Model, s.Version), s.Reason)
	}
	return fmt.Errorf("%w for %s: %s", ErrDrift, modelVersion(s.Model, s.Version), s.Reason)
}

// Status returns a model version's drift state. It never blocks on the
// worker: it reads what the last evaluated window published.
func (m *Monitor) Status(model, version string) Status {
	s := Status{Model: model, Version: version}
	if pl := m.lookup(model, version); pl != nil {
		s.Monitored = true
		s.Learning = pl.profile == nil
	}
	m.pub.mu.RLock()
	defer m.pub.mu.RUnlock()
	h := m.pub.byKey[mvKey{Model: model, Version: version}]
	if h == nil || len(h.results) == 0 {
		return s
	}
	last := h.results[len(h.results)-1]
	s.Window = last.Window
	if len(last.Alarmed) > 0 || len(last.Checks) > 0 {
		s.Alarmed, s.Features, s.Checks, s.Reason, s.Since = true, slices.Clone(last.Alarmed), slices.Clone(last.Checks), last.Reason(), h.since
	}
	return s
}

// Results returns a model version's last window results, newest first.
func (m *Monitor) Results(model, version string) []Result {
	m.pub.mu.RLock()
	defer m.pub.mu.RUnlock()
	h := m.pub.byKey[mvKey{Model: model, Version: version}]
	if h == nil {
		return nil
	}
	out := slices.Clone(h.results)
	slices.Reverse(out)
	return out
}

// Alerts returns the last alerts of every model version, newest first.
func (m *Monitor) Alerts() []Alert {
	m.pub.mu.RLock()
	defer m.pub.mu.RUnlock()
	out := slices.Clone(m.pub.alerts)
	slices.Reverse(out)
	return out
}

// published is what the worker publishes for readers: bounded histories of
// results and alerts.
type published struct {
	mu      sync.RWMutex
	limit   int
	byKey   map[mvKey]*history // guarded by mu
	alerts  []Alert            // guarded by mu; oldest first
	windows int64              // guarded by mu
	nAlerts int64              // guarded by mu
}

type history struct {
	results []Result  // oldest first, at most limit
	since   time.Time // when the current alarm was raised
}

func (p *published) init(limit int) {
	p.limit = limit
	p.byKey = map[mvKey]*history{}
}

func (p *published) add(r Result, a *Alert) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := mvKey{Model: r.Model, Version: r.Version}
	h := p.byKey[k]
	if h == nil {
		h = &history{}
		p.byKey[k] = h
	}
	alarmed := func(r *Result) bool { return len(r.Alarmed) > 0 || len(r.Checks) > 0 }
	wasAlarmed := len(h.results) > 0 && alarmed(&h.results[len(h.results)-1])
	switch {
	case !alarmed(&r):
		h.since = time.Time{}
	case !wasAlarmed:
		h.since = r.Window.End
	}
	h.results = observe.AppendBounded(h.results, r, p.limit)
	p.windows++
	if a != nil {
		p.alerts = observe.AppendBounded(p.alerts, *a, p.limit)
		p.nAlerts++
	}
}

func (p *published) totals() (windows, alerts int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.windows, p.nAlerts
}

// keys lists the model versions with results, sorted.
func (p *published) keys() []mvKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return observe.SortedKeys(p.byKey)
}

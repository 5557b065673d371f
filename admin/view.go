package admin

import (
	"time"

	"github.com/servekit/servekit/rollout"
)

// The admin API's JSON. Status itself has no JSON names (it is Go API);
// these views name every field in snake case, give durations in
// nanoseconds (as ShadowSnapshot does) and times in RFC 3339, and leave
// out what is unset.

type modelView struct {
	Model      string                  `json:"model"`
	Ready      bool                    `json:"ready"`
	Versions   []versionView           `json:"versions"`
	Rollbacks  int                     `json:"rollbacks"`
	RollbackTo map[string]float64      `json:"rollback_to,omitempty"`
	Plan       *planView               `json:"plan,omitempty"`
	Mirroring  bool                    `json:"mirroring"`
	Shadow     *rollout.ShadowSnapshot `json:"shadow,omitempty"`
}

type versionView struct {
	Version        string           `json:"version"`
	Ready          bool             `json:"ready"`
	Weight         float64          `json:"weight"`
	InFlight       int64            `json:"in_flight"`
	Requests       int64            `json:"requests"`
	Failures       int64            `json:"failures"`
	ErrorRate      float64          `json:"error_rate"`
	Errors         map[string]int64 `json:"errors,omitempty"`
	WindowRequests int64            `json:"window_requests"`
	WindowFailures int64            `json:"window_failures"`
	P50            time.Duration    `json:"p50_ns"`
	P99            time.Duration    `json:"p99_ns"`
}

type planView struct {
	Canary      string            `json:"canary"`
	Stable      string            `json:"stable"`
	Steps       []stepView        `json:"steps"`
	State       rollout.PlanState `json:"state"`
	Step        int               `json:"step"`
	Weight      float64           `json:"weight"`
	Started     string            `json:"started,omitempty"`
	StepStarted string            `json:"step_started,omitempty"`
	LastCheck   string            `json:"last_check,omitempty"`
	Waiting     string            `json:"waiting,omitempty"`
	Ended       string            `json:"ended,omitempty"`
	Reason      string            `json:"reason,omitempty"`
}

type stepView struct {
	Weight float64 `json:"weight"`
	Hold   string  `json:"hold"`
}

func viewOf(s rollout.Status) modelView {
	v := modelView{
		Model: s.Model, Ready: s.Ready, Rollbacks: s.Rollbacks, RollbackTo: s.RollbackTo,
		Shadow: s.Shadow, Versions: make([]versionView, 0, len(s.Versions)),
	}
	for _, vs := range s.Versions {
		vv := versionView{
			Version: vs.Version, Ready: vs.Ready, Weight: vs.Weight,
			InFlight: vs.InFlight, Requests: vs.Requests, Failures: vs.Failures, ErrorRate: vs.ErrorRate(),
			WindowRequests: vs.WindowRequests, WindowFailures: vs.WindowFailures, P50: vs.P50, P99: vs.P99,
		}
		for c, n := range vs.Errors {
			if vv.Errors == nil {
				vv.Errors = make(map[string]int64)
			}
			vv.Errors[c.String()] = n
		}
		v.Versions = append(v.Versions, vv)
	}
	if p := s.Plan; p != nil {
		pv := &planView{
			Canary: p.Canary, Stable: p.Stable, State: p.State, Step: p.Step, Weight: p.Weight,
			Started: stamp(p.Started), StepStarted: stamp(p.StepStarted), LastCheck: stamp(p.LastCheck),
			Waiting: p.Waiting, Ended: stamp(p.Ended), Reason: p.Reason,
		}
		for _, st := range p.Steps {
			pv.Steps = append(pv.Steps, stepView{Weight: st.Weight, Hold: st.Hold.String()})
		}
		v.Plan = pv
	}
	v.Mirroring = s.Shadow != nil && s.Shadow.Active
	return v
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

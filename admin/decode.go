package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

// errInput is wrapped by the admin API's decoding errors (400).
var errInput = serving.Errorf(serving.InvalidArgument, "admin")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInput}, args...)...)
}

// decodeBody reads exactly one JSON value into v, refusing unknown fields
// (a misspelt "pecent" must not silently mean 0) and anything after the
// value. An empty body is an error too.
func decodeBody(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		}
		if err == nil {
			err = errors.New("data after the value")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err // answered 413
	case errors.Is(err, io.EOF):
		return badInput("empty body: want a JSON value")
	}
	return badInput("malformed JSON: %v", err)
}

// duration is a JSON string in Go's syntax ("30s", "1m30s").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"30s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = duration(v)
	return nil
}

// planRequest is the body of POST /v1/models/{model}/plan:
//
//	{"canary": "2", "stable": "1",
//	 "steps": [{"weight": 1, "hold": "1m"}, {"weight": 5, "hold": "5m"}, {"weight": 50, "hold": "10m"}],
//	 "interval": "10s", "guard_timeout": "5s",
//	 "guards": [{"min_requests": 200}, {"max_error_rate": 0.01}, {"max_error_rate_increase": 0.005},
//	            {"max_p99": "50ms"}, {"min_agreement": {"rate": 0.98, "min_pairs": 500}}]}
//
// stable, interval, guard_timeout and guards may be left out (see rollout.Plan).
type planRequest struct {
	Canary       string      `json:"canary"`
	Stable       string      `json:"stable"`
	Steps        []stepSpec  `json:"steps"`
	Interval     duration    `json:"interval"`
	GuardTimeout duration    `json:"guard_timeout"`
	Guards       []guardSpec `json:"guards"`
}

type stepSpec struct {
	Weight *float64 `json:"weight"`
	Hold   duration `json:"hold"`
}

// guardSpec names one built-in guard: exactly one field set.
type guardSpec struct {
	MinRequests          *int64         `json:"min_requests,omitempty"`
	MaxErrorRate         *float64       `json:"max_error_rate,omitempty"`
	MaxErrorRateIncrease *float64       `json:"max_error_rate_increase,omitempty"`
	MaxP99               *duration      `json:"max_p99,omitempty"`
	MinAgreement         *agreementSpec `json:"min_agreement,omitempty"`
}

type agreementSpec struct {
	Rate     float64 `json:"rate"`
	MinPairs int64   `json:"min_pairs"`
}

func (g guardSpec) guard(i int) (rollout.Guard, error) {
	var out []rollout.Guard
	var names []string
	rate := func(name string, v *float64, mk func(float64) rollout.Guard) {
		if v != nil {
			names = append(names, name)
			if math.IsNaN(*v) || *v < 0 || *v > 1 {
				out = append(out, nil)
				return
			}
			out = append(out, mk(*v))
		}
	}
	if g.MinRequests != nil {
		names = append(names, "min_requests")
		if *g.MinRequests < 0 {
			out = append(out, nil)
		} else {
			out = append(out, rollout.MinRequests(*g.MinRequests))
		}
	}
	rate("max_error_rate", g.MaxErrorRate, rollout.MaxErrorRate)
	rate("max_error_rate_increase", g.MaxErrorRateIncrease, rollout.MaxErrorRateIncrease)
	if g.MaxP99 != nil {
		names = append(names, "max_p99")
		out = append(out, rollout.MaxP99(time.Duration(*g.MaxP99)))
	}
	if a := g.MinAgreement; a != nil {
		names = append(names, "min_agreement")
		if math.IsNaN(a.Rate) || a.Rate < 0 || a.Rate > 1 || a.MinPairs < 0 {
			out = append(out, nil)
		} else {
			out = append(out, rollout.MinAgreement(a.Rate, a.MinPairs))
		}
	}
	switch {
	case len(out) != 1:
		return nil, badInput("plan: guard %d: want exactly one of min_requests, max_error_rate, max_error_rate_increase, max_p99, min_agreement; got %d", i, len(out))
	case out[0] == nil:
		return nil, badInput("plan: guard %d: %s out of range (rates in [0, 1], counts ≥ 0)", i, names[0])
	}
	return out[0], nil
}

// plan converts the request to a Plan; Router.Start checks the rest
// (weights, steps in order, versions).
func (p planRequest) plan() (rollout.Plan, error) {
	if p.Canary == "" {
		return rollout.Plan{}, badInput(`plan: want "canary"`)
	}
	if len(p.Steps) == 0 {
		return rollout.Plan{}, badInput(`plan: want "steps"`)
	}
	out := rollout.Plan{Canary: p.Canary, Stable: p.Stable, Interval: time.Duration(p.Interval), GuardTimeout: time.Duration(p.GuardTimeout)}
	for i, s := range p.Steps {
		if s.Weight == nil {
			return rollout.Plan{}, badInput("plan: step %d: want a weight", i)
		}
		out.Steps = append(out.Steps, rollout.Step{Weight: *s.Weight, Hold: time.Duration(s.Hold)})
	}
	for i, g := range p.Guards {
		guard, err := g.guard(i)
		if err != nil {
			return rollout.Plan{}, err
		}
		out.Guards = append(out.Guards, guard)
	}
	return out, nil
}

// String describes the plan for the change log.
func (p planRequest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "canary %s", p.Canary)
	if p.Stable != "" {
		fmt.Fprintf(&b, " stable %s", p.Stable)
	}
	b.WriteString(" steps")
	for _, s := range p.Steps {
		if s.Weight != nil {
			fmt.Fprintf(&b, " %g%%/%v", *s.Weight, time.Duration(s.Hold))
		}
	}
	fmt.Fprintf(&b, " guards %d", len(p.Guards))
	return b.String()
}

// mirrorRequest is the body of PUT /v1/models/{model}/mirror:
//
//	{"version": "2", "percent": 100, "max_mirrors": 8, "timeout": "1s",
//	 "compare": {"score": "threshold(0.7)", "": "argmax"}}
//
// compare maps output names ("" for the rest) to rules as
// ParseComparison reads them. Only version and percent are required; the
// others apply when mirroring starts, not to a percentage change.
type mirrorRequest struct {
	Version    string            `json:"version"`
	Percent    *float64          `json:"percent"`
	MaxMirrors int               `json:"max_mirrors"`
	Timeout    duration          `json:"timeout"`
	Compare    map[string]string `json:"compare"`
}

func (m mirrorRequest) options() ([]rollout.ShadowOption, error) {
	if m.Version == "" || m.Percent == nil {
		return nil, badInput(`mirror: want {"version": "...", "percent": 0 to 100}`)
	}
	if !(*m.Percent >= 0 && *m.Percent <= 100) {
		return nil, badInput("mirror: percent %v, want 0 to 100", *m.Percent)
	}
	var opts []rollout.ShadowOption
	if m.MaxMirrors < 0 {
		return nil, badInput("mirror: max_mirrors %d, want at least 1", m.MaxMirrors)
	}
	if m.MaxMirrors > 0 {
		opts = append(opts, rollout.WithMaxMirrors(m.MaxMirrors))
	}
	if m.Timeout > 0 {
		opts = append(opts, rollout.WithMirrorTimeout(time.Duration(m.Timeout)))
	}
	for _, out := range slices.Sorted(maps.Keys(m.Compare)) {
		c, err := rollout.ParseComparison(m.Compare[out])
		if err != nil {
			return nil, badInput("mirror: output %q: %v", out, err)
		}
		opts = append(opts, rollout.WithComparison(out, c))
	}
	return opts, nil
}

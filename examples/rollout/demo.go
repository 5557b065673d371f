package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// demo walks the sequence through the admin API and prints what happens.
type demo struct {
	o      *options
	out    io.Writer
	admin  *adminClient
	start  time.Time
	load   *loadGen
	phases []string
	shadow shadowView
	plan   string
}

func (d *demo) since() float64 { return time.Since(d.start).Seconds() }

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] "+format+"\n", append([]any{d.since()}, args...)...)
}

// hold waits one phase, or until ctx ends.
func (d *demo) hold(ctx context.Context) error {
	t := time.NewTimer(d.o.hold)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// walk is the seed's sequence: mirror → canary plan → switch → rollback.
func (d *demo) walk(ctx context.Context) error {
	o := d.o
	// 1. Shadow: version 2 sees every request version 1 answers, off the
	// request path, and every pair is compared.
	st, err := d.do(ctx, "mirror", "PUT", "/mirror", map[string]any{"version": "2", "percent": 100})
	if err != nil {
		return err
	}
	d.say("mirror: 100 %% of the traffic also goes to version 2 (shadow); callers only see version 1: weights %s", st.weightsString())
	if err := d.hold(ctx); err != nil {
		return err
	}
	if st, err = d.admin.status(ctx); err != nil {
		return err
	}
	d.printShadow(st.Shadow)

	// 2. Canary plan, guarded by the shadow's agreement and the error rate.
	steps := []map[string]any{}
	for _, w := range []float64{1, 5, 25, 50, 100} {
		steps = append(steps, map[string]any{"weight": w, "hold": o.hold.String()})
	}
	plan := map[string]any{
		"canary": "2", "stable": "1", "steps": steps,
		"interval": max(o.hold/4, 10*time.Millisecond).String(),
		"guards": []map[string]any{
			{"min_agreement": map[string]any{"rate": o.minAgreement, "min_pairs": o.minPairs}},
			{"max_error_rate": 0.01},
		},
	}
	if st, err = d.do(ctx, "plan", "POST", "/plan", plan); err != nil {
		return err
	}
	d.say("plan: canary 2, steps 1%% → 5%% → 25%% → 50%% → 100%%, each held %v while shadow agreement ≥ %g (after %d pairs) and error rate ≤ 1%%",
		o.hold, o.minAgreement, o.minPairs)
	lastStep := -1
	for {
		if st.Plan == nil {
			return fmt.Errorf("plan vanished from the status")
		}
		p := st.Plan
		if p.Step != lastStep && p.State == "running" {
			lastStep = p.Step
			d.say("plan step %d/%d: weights %s", p.Step+1, len(p.Steps), st.weightsString())
		}
		if p.State != "running" && p.State != "paused" {
			d.plan = p.State
			if p.State != "succeeded" {
				return fmt.Errorf("plan %s: %s", p.State, p.Reason)
			}
			d.say("plan succeeded: weights %s", st.weightsString())
			break
		}
		select {
		case <-time.After(max(o.hold/10, 5*time.Millisecond)):
		case <-ctx.Done():
			return ctx.Err()
		}
		if st, err = d.admin.status(ctx); err != nil {
			return err
		}
	}

	// Version 2 answers everything now: nothing is left to mirror.
	if st, err = d.do(ctx, "stop mirror", "DELETE", "/mirror", nil); err != nil {
		return err
	}
	d.printShadow(st.Shadow)

	// 3. Blue-green: all traffic back to version 1 in one step, then
	// 4. rollback: undo that switch, version 2 takes everything again.
	if st, err = d.do(ctx, "switch", "POST", "/switch", map[string]any{"version": "1"}); err != nil {
		return err
	}
	d.say("switch: blue-green to version 1 at once: weights %s", st.weightsString())
	if err := d.hold(ctx); err != nil {
		return err
	}
	if st, err = d.do(ctx, "rollback", "POST", "/rollback", nil); err != nil {
		return err
	}
	d.say("rollback: the switch undone: weights %s", st.weightsString())
	if err := d.hold(ctx); err != nil {
		return err
	}
	c := d.load.snapshot()
	d.say("so far: %d requests, %d failed", c.Requests, c.Failed)
	return nil
}

// do makes one change through the admin API and records the phase.
func (d *demo) do(ctx context.Context, phase, method, path string, body any) (*modelStatus, error) {
	st, err := d.admin.call(ctx, method, "/v1/models/fraud"+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", phase, err)
	}
	d.phases = append(d.phases, phase)
	return st, nil
}

func (d *demo) printShadow(s *shadowView) {
	if s == nil {
		return
	}
	d.shadow = *s
	line := fmt.Sprintf("shadow of version %s: %d pairs (%d dropped: mirror slots busy)", s.Challenger, s.Pairs, s.Dropped)
	for _, o := range s.Outputs {
		line += fmt.Sprintf("; %s by %s: agreement %.2f %% (%d of %d), max |diff| %.4f, mean |diff| %.4f",
			o.Name, o.Rule, 100*o.Agreement, o.Agreed, o.Decisions, o.MaxAbsDiff, o.MeanAbsDiff)
	}
	line += fmt.Sprintf("; p50/p99 primary %v/%v, shadow %v/%v; errors primary %d, shadow %d",
		time.Duration(s.Primary.P50).Round(time.Microsecond), time.Duration(s.Primary.P99).Round(time.Microsecond),
		time.Duration(s.Shadow.P50).Round(time.Microsecond), time.Duration(s.Shadow.P99).Round(time.Microsecond),
		s.Primary.Errors, s.Shadow.Errors)
	d.say("%s", line)
}

// The admin API's JSON, as much of it as the demo reads.
type modelStatus struct {
	Versions []struct {
		Version string  `json:"version"`
		Ready   bool    `json:"ready"`
		Weight  float64 `json:"weight"`
	} `json:"versions"`
	Plan *struct {
		State  string `json:"state"`
		Step   int    `json:"step"`
		Steps  []any  `json:"steps"`
		Reason string `json:"reason"`
	} `json:"plan"`
	Shadow *shadowView `json:"shadow"`
}

type shadowView struct {
	Challenger string `json:"challenger"`
	Pairs      int64  `json:"pairs"`
	Dropped    int64  `json:"dropped"`
	Primary    struct {
		Errors int64 `json:"errors"`
		P50    int64 `json:"p50_ns"`
		P99    int64 `json:"p99_ns"`
	} `json:"primary"`
	Shadow struct {
		Errors int64 `json:"errors"`
		P50    int64 `json:"p50_ns"`
		P99    int64 `json:"p99_ns"`
	} `json:"shadow"`
	Outputs []struct {
		Name        string  `json:"name"`
		Rule        string  `json:"rule"`
		Agreement   float64 `json:"agreement"`
		Agreed      int64   `json:"agreed"`
		Decisions   int64   `json:"decisions"`
		MaxAbsDiff  float64 `json:"max_abs_diff"`
		MeanAbsDiff float64 `json:"mean_abs_diff"`
	} `json:"outputs"`
}

func (s *modelStatus) weights() map[string]any {
	w := map[string]any{}
	for _, v := range s.Versions {
		if v.Weight > 0 {
			w[v.Version] = v.Weight
		}
	}
	return w
}

func (s *modelStatus) weightsString() string {
	w := s.weights()
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s=%v%%", v, w[v]))
	}
	return strings.Join(parts, " ")
}

// adminClient calls the admin API with the bearer token.
type adminClient struct {
	base, token string
	client      http.Client
}

func (a *adminClient) status(ctx context.Context) (*modelStatus, error) {
	return a.call(ctx, "GET", "/v1/models/fraud", nil)
}

func (a *adminClient) call(ctx context.Context, method, path string, body any) (*modelStatus, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	var st modelStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
)

// controller is the deployment half of the loop, what Argo Rollouts or
// Flagger does beside a cluster: when the repository has loaded a new
// version (at 0 %), it mirrors traffic to it, reads the shadow's verdict,
// then runs a staged canary plan whose guards decide, and reports each
// step. It hands every judgement to the plan's guards rather than judging
// the shadow itself: one place decides, and the decision and its reason
// are in the plan's status, which the admin API and the metrics show.
type controller struct {
	o    *options
	repo *repository.Repository
	mon  *drift.Monitor
	qm   *quality.Monitor
	hist *history
	tl   *timeline
}

// outcome is how the rollout ended.
type outcome struct {
	Version string
	Plan    rollout.PlanStatus
	Shadow  rollout.ShadowSnapshot // at the plan's end
	// AUC is the two versions' AUC on the labelled transactions both
	// answered during the plan (the AUC guard's comparison), at its end.
	AUC quality.Comparison
}

// run waits for the next version, shadows it, runs the plan and returns
// how it ended. It returns early only when ctx ends or a step cannot be
// taken.
func (c *controller) run(ctx context.Context, stable string) (*outcome, error) {
	r, v, err := c.awaitVersion(ctx, stable)
	if err != nil {
		return nil, err
	}

	// Shadow: every request v1 answers also goes to v2, off the request
	// path, and the answers are compared (at the 0.5 decision threshold:
	// the default rule for a score per row).
	if err := r.Mirror(v, 100); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.StopMirror(sctx) // stops mirroring; the comparison stays in Status
	}
	defer stop()
	c.tl.say("shadow: 100 %% of v%s's traffic mirrored to v%s; waiting for %d compared pairs", stable, v, c.o.shadowPairs)
	sh, err := c.awaitPairs(ctx, r)
	if err != nil {
		return nil, err
	}
	c.tl.add(time.Now(), evShadow, "shadow of v%s: %s", v, shadowLine(sh, stable, v))

	// Canary: 5 % → 25 % → 50 %, each step held while the guards hold, then
	// 100 %.
	plan := rollout.Plan{Canary: v, Stable: stable, Guards: guards(c.o, c.mon, c.qm), Interval: c.o.interval}
	for _, w := range c.o.steps {
		plan.Steps = append(plan.Steps, rollout.Step{Weight: w, Hold: c.o.hold})
	}
	if err := r.Start(plan); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	c.tl.say("canary plan for v%s: steps %s, each held %v; guards checked every %v", v, stepsLine(c.o.steps), c.o.hold, c.o.interval)
	ps, err := c.watchPlan(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &outcome{Version: v, Plan: ps, AUC: c.auc(ctx, ps)}
	if st := r.Status(); st.Shadow != nil {
		out.Shadow = *st.Shadow
	}
	return out, nil
}

// awaitVersion waits until the repository has a version newer than stable
// ready, and returns the model's router and that version.
func (c *controller) awaitVersion(ctx context.Context, stable string) (*rollout.Router, string, error) {
	for {
		for _, m := range c.repo.Status().Models {
			if m.Name != modelName {
				continue
			}
			for _, vs := range m.Versions {
				if vs.State == repository.StateReady && newer(vs.Version, stable) {
					if r, ok := c.repo.Router(modelName); ok {
						c.tl.add(vs.LoadedAt, evLoaded, "v%s loaded by the repository and warmed up; it has 0 %% of the traffic (traffic \"manual\")", vs.Version)
						return r, vs.Version, nil
					}
				}
			}
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return nil, "", fmt.Errorf("waiting for a version after v%s: %w", stable, err)
		}
	}
}

// awaitPairs waits for the shadow to have compared enough pairs.
func (c *controller) awaitPairs(ctx context.Context, r *rollout.Router) (rollout.ShadowSnapshot, error) {
	for {
		if st := r.Status(); st.Shadow != nil && st.Shadow.Pairs >= c.o.shadowPairs {
			return *st.Shadow, nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return rollout.ShadowSnapshot{}, fmt.Errorf("waiting for shadow pairs: %w", err)
		}
	}
}

// watchPlan reports each step of the plan as it begins, and its end.
func (c *controller) watchPlan(ctx context.Context, r *rollout.Router) (rollout.PlanStatus, error) {
	step := -1
	for {
		st := r.Status()
		p := st.Plan
		if p == nil {
			return rollout.PlanStatus{}, fmt.Errorf("plan vanished from the router's status")
		}
		if p.Active() && p.Step != step {
			step = p.Step
			c.tl.add(p.StepStarted, evStep, "canary step %d/%d: v%s takes %g %% of the traffic, v%s the rest%s",
				step+1, len(p.Steps), p.Canary, p.Weight, p.Stable, verdicts(st.Shadow, c.auc(ctx, *p)))
		}
		if !p.Active() {
			switch p.State {
			case rollout.PlanSucceeded:
				c.tl.add(p.Ended, evPromoted, "promoted: v%s has 100 %% of the traffic (every step's guards held)%s",
					p.Canary, verdicts(st.Shadow, c.auc(ctx, *p)))
			case rollout.PlanRolledBack:
				c.tl.add(p.Ended, evRolledBack, "rolled back at step %d (%g %%): v%s has 100 %% again; reason: %s",
					p.Step+1, p.Steps[p.Step].Weight, p.Stable, p.Reason)
			default:
				return *p, fmt.Errorf("plan %s: %s", p.State, p.Reason)
			}
			return *p, nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return *p, fmt.Errorf("plan at step %d: %w", p.Step+1, err)
		}
	}
}

// auc is what the AUC guard compares: both versions' AUC on the labelled
// transactions both answered since the plan began.
func (c *controller) auc(ctx context.Context, p rollout.PlanStatus) quality.Comparison {
	cmp, err := c.qm.Compare(ctx, modelName, p.Stable, p.Canary, quality.AUC, quality.Paired, p.Started)
	if err != nil {
		return quality.Comparison{}
	}
	return cmp
}

// verdicts is what the guards saw, for a step's line.
func verdicts(sh *rollout.ShadowSnapshot, a quality.Comparison) string {
	var b strings.Builder
	if sh != nil {
		if rate, pairs, ok := sh.MinAgreement(); ok {
			fmt.Fprintf(&b, "; shadow agreement %.1f %% over %d pairs", 100*rate, pairs)
		}
	}
	if a.N > 0 {
		fmt.Fprintf(&b, "; AUC on %d labelled transactions: stable %.3f, canary %.3f", a.N, a.Baseline, a.Candidate)
	}
	return b.String()
}

func shadowLine(sh rollout.ShadowSnapshot, primary, challenger string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d pairs compared", sh.Pairs)
	for _, o := range sh.Outputs {
		fmt.Fprintf(&b, "; %q by %s: agreement %.1f %%, mean |diff| %.3f, max |diff| %.3f, non-finite %d",
			o.Name, o.Rule, 100*o.Agreement, o.MeanAbsDiff, o.MaxAbsDiff, o.NonFinite)
	}
	fmt.Fprintf(&b, "; errors v%s %d, v%s %d; p99 %v vs %v", primary, sh.Primary.Errors, challenger, sh.Shadow.Errors,
		sh.Primary.P99.Round(time.Microsecond), sh.Shadow.P99.Round(time.Microsecond))
	return b.String()
}

func stepsLine(steps []float64) string {
	parts := make([]string, 0, len(steps)+1)
	for _, w := range steps {
		parts = append(parts, fmt.Sprintf("%g %%", w))
	}
	return strings.Join(append(parts, "100 %"), " → ")
}

// newer says whether version a is above b (decimal names, as the
// repository requires).
func newer(a, b string) bool {
	return len(a) > len(b) || len(a) == len(b) && a > b
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

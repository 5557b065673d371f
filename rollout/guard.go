package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Guard judges a plan's canary. Check returns nil when the canary holds, an
// error wrapping ErrInconclusive when it cannot tell yet (too little
// traffic, a metrics backend that did not answer), and any other error when
// the canary fails: the plan then rolls back at once and records the
// error's message as the reason. A plan asks its guards in order, every
// Plan.Interval, from one goroutine at a time, with a ctx bounded by
// Plan.GuardTimeout.
//
// A guard can read anything, not only the Snapshot: GuardFunc adapts a
// function that queries Prometheus, or reads another component's numbers,
// such as a drift monitor's score or a Shadow the router does not run
// (for the router's own mirror, MinAgreement does this):
//
//	agree := rollout.GuardFunc(func(ctx context.Context, _ rollout.Snapshot) error {
//		rate, pairs, ok := shadow.Snapshot().MinAgreement()
//		if !ok || pairs < 500 {
//			return fmt.Errorf("%w: %d mirrored pairs", rollout.ErrInconclusive, pairs)
//		}
//		if rate < 0.99 {
//			return fmt.Errorf("shadow agreement %.3f < 0.99", rate)
//		}
//		return nil
//	})
type Guard interface {
	Check(ctx context.Context, s Snapshot) error
}

// GuardFunc adapts a function to Guard.
type GuardFunc func(ctx context.Context, s Snapshot) error

// Check calls f.
func (f GuardFunc) Check(ctx context.Context, s Snapshot) error { return f(ctx, s) }

// ErrInconclusive is wrapped by a guard's error when it cannot judge yet:
// the plan neither advances nor rolls back, and shows the message in
// PlanStatus.Waiting until the next check.
var ErrInconclusive = errors.New("rollout: inconclusive")

// MinRequests is inconclusive until the canary has answered n requests in
// the current step. Put it first: guards after it are not asked before.
func MinRequests(n int64) Guard {
	return GuardFunc(func(_ context.Context, s Snapshot) error {
		if s.Canary.Requests < n {
			return fmt.Errorf("%w: canary %q answered %d of %d requests needed to judge", ErrInconclusive, s.Canary.Version, s.Canary.Requests, n)
		}
		return nil
	})
}

// MaxErrorRate fails when the canary's error rate in the current step
// (Stats.ErrorRate: failures per request, see IsFailure) is above rate,
// e.g. 0.01 for 1 %. It is inconclusive while the step has no request.
func MaxErrorRate(rate float64) Guard {
	return GuardFunc(func(_ context.Context, s Snapshot) error {
		c := s.Canary
		if c.Requests == 0 {
			return fmt.Errorf("%w: canary %q has no requests in this step", ErrInconclusive, c.Version)
		}
		if got := c.ErrorRate(); got > rate {
			return fmt.Errorf("canary %q error rate %.2f%% (%d of %d) > %.2f%%", c.Version, 100*got, c.Failures, c.Requests, 100*rate)
		}
		return nil
	})
}

// MaxErrorRateIncrease fails when the canary's error rate in the current
// step is more than margin above the stable version's (e.g. 0.005: half a
// percentage point), which tolerates errors both versions share, such as a
// flaky feature store. The stable's rate is taken over the step, or over
// the stats window when it had no request in the step (at 100 % canary).
// It is inconclusive while the canary has no request in the step.
func MaxErrorRateIncrease(margin float64) Guard {
	return GuardFunc(func(_ context.Context, s Snapshot) error {
		c, st := s.Canary, s.Stable
		if c.Requests == 0 {
			return fmt.Errorf("%w: canary %q has no requests in this step", ErrInconclusive, c.Version)
		}
		base := st.ErrorRate()
		if st.Requests == 0 && st.WindowRequests > 0 {
			base = float64(st.WindowFailures) / float64(st.WindowRequests)
		}
		if got := c.ErrorRate(); got > base+margin {
			return fmt.Errorf("canary %q error rate %.2f%% > stable %q %.2f%% + %.2f points", c.Version, 100*got, st.Version, 100*base, 100*margin)
		}
		return nil
	})
}

// MaxP99 fails when the canary's p99 latency over the stats window is above
// d. It is inconclusive while the window holds no canary request.
func MaxP99(d time.Duration) Guard {
	return GuardFunc(func(_ context.Context, s Snapshot) error {
		c := s.Canary
		if c.WindowRequests == 0 {
			return fmt.Errorf("%w: canary %q has no requests in the stats window", ErrInconclusive, c.Version)
		}
		if c.P99 > d {
			return fmt.Errorf("canary %q p99 latency %v > %v", c.Version, c.P99.Round(time.Microsecond), d)
		}
		return nil
	})
}

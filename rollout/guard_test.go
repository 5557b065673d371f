package rollout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

func snap(canary, stable rollout.Stats) rollout.Snapshot {
	return rollout.Snapshot{
		Canary: rollout.VersionStatus{Version: "2", Ready: true, Stats: canary},
		Stable: rollout.VersionStatus{Version: "1", Ready: true, Stats: stable},
	}
}

func TestGuards(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name   string
		g      rollout.Guard
		s      rollout.Snapshot
		result string // "", "inconclusive", or a substring of the failure
	}{
		{"min requests short", rollout.MinRequests(100), snap(rollout.Stats{Requests: 99}, rollout.Stats{}), "inconclusive"},
		{"min requests met", rollout.MinRequests(100), snap(rollout.Stats{Requests: 100}, rollout.Stats{}), ""},
		{"error rate no data", rollout.MaxErrorRate(0.01), snap(rollout.Stats{}, rollout.Stats{}), "inconclusive"},
		{"error rate ok", rollout.MaxErrorRate(0.01), snap(rollout.Stats{Requests: 1000, Failures: 10}, rollout.Stats{}), ""},
		{"error rate high", rollout.MaxErrorRate(0.01), snap(rollout.Stats{Requests: 1000, Failures: 11}, rollout.Stats{}), `canary "2" error rate 1.10% (11 of 1000) > 1.00%`},
		{"increase ok", rollout.MaxErrorRateIncrease(0.01), snap(rollout.Stats{Requests: 100, Failures: 5}, rollout.Stats{Requests: 1000, Failures: 40}), ""},
		{"increase high", rollout.MaxErrorRateIncrease(0.01), snap(rollout.Stats{Requests: 100, Failures: 6}, rollout.Stats{Requests: 1000, Failures: 40}), `canary "2" error rate 6.00% > stable "1" 4.00% + 1.00 points`},
		{"increase vs stable window", rollout.MaxErrorRateIncrease(0.01), snap(rollout.Stats{Requests: 100, Failures: 6}, rollout.Stats{WindowRequests: 100, WindowFailures: 10}), ""},
		{"p99 no data", rollout.MaxP99(50 * ms), snap(rollout.Stats{Requests: 5}, rollout.Stats{}), "inconclusive"},
		{"p99 ok", rollout.MaxP99(50 * ms), snap(rollout.Stats{WindowRequests: 5, P99: 50 * ms}, rollout.Stats{}), ""},
		{"p99 high", rollout.MaxP99(50 * ms), snap(rollout.Stats{WindowRequests: 5, P99: 51 * ms}, rollout.Stats{}), `canary "2" p99 latency 51ms > 50ms`},
	} {
		err := c.g.Check(context.Background(), c.s)
		switch {
		case c.result == "" && err != nil:
			t.Errorf("%s: %v, want nil", c.name, err)
		case c.result == "inconclusive" && !errors.Is(err, rollout.ErrInconclusive):
			t.Errorf("%s: %v, want inconclusive", c.name, err)
		case c.result != "" && c.result != "inconclusive" && (err == nil || errors.Is(err, rollout.ErrInconclusive) || !strings.Contains(err.Error(), c.result)):
			t.Errorf("%s: %v, want a failure saying %q", c.name, err, c.result)
		}
	}
}

func TestIsFailure(t *testing.T) {
	for c := serving.OK; c <= serving.Internal; c++ {
		want := c == serving.Internal || c == serving.Unavailable || c == serving.DeadlineExceeded || c == serving.Unimplemented
		if rollout.IsFailure(c) != want {
			t.Errorf("IsFailure(%v) = %v", c, !want)
		}
	}
}

// MinQuality and MaxLoss read a QualityFunc over the plan's span: they
// wait while it rests on too few predictions or fails, and fail when the
// canary is worse than the stable by more than the margin.
func TestQualityGuards(t *testing.T) {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := snap(rollout.Stats{}, rollout.Stats{})
	s.Model, s.PlanStarted = "fraud", started
	fn := func(st, ca float64, n int64, err error) rollout.QualityFunc {
		return func(_ context.Context, model, stable, canary string, since time.Time) (float64, float64, int64, error) {
			if model != "fraud" || stable != "1" || canary != "2" || !since.Equal(started) {
				t.Errorf("asked for %s %s/%s since %v", model, stable, canary, since)
			}
			return st, ca, n, err
		}
	}
	for _, c := range []struct {
		name   string
		g      rollout.Guard
		result string
	}{
		{"too few", rollout.MinQuality("AUC", fn(0.9, 0.5, 299, nil), 0.02, 300), "inconclusive"},
		{"source failed", rollout.MinQuality("AUC", fn(0, 0, 0, errors.New("monitor closed")), 0.02, 300), "inconclusive"},
		{"within margin", rollout.MinQuality("AUC", fn(0.90, 0.885, 300, nil), 0.02, 300), ""},
		{"better", rollout.MinQuality("AUC", fn(0.90, 0.95, 300, nil), 0.02, 300), ""},
		{"worse", rollout.MinQuality("AUC", fn(0.90, 0.87, 300, nil), 0.02, 300), `canary "2" AUC 0.87 is below stable "1"'s 0.9 by more than 0.02 (300 predictions)`},
		{"loss within", rollout.MaxLoss("log loss", fn(0.30, 0.31, 500, nil), 0.02, 300), ""},
		{"loss worse", rollout.MaxLoss("log loss", fn(0.30, 0.35, 500, nil), 0.02, 300), `canary "2" log loss 0.35 is above stable "1"'s 0.3`},
	} {
		err := c.g.Check(context.Background(), s)
		switch {
		case c.result == "" && err != nil:
			t.Errorf("%s: %v, want nil", c.name, err)
		case c.result == "inconclusive" && !errors.Is(err, rollout.ErrInconclusive):
			t.Errorf("%s: %v, want inconclusive", c.name, err)
		case c.result != "" && c.result != "inconclusive" && (err == nil || errors.Is(err, rollout.ErrInconclusive) || !strings.Contains(err.Error(), c.result)):
			t.Errorf("%s: %v, want a failure saying %q", c.name, err, c.result)
		}
	}
}

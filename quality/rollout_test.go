package quality_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rollout/rollouttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A canary that ranks worse on labelled traffic rolls back: each version's
// chain below the router carries the quality middleware, a 100% mirror
// makes the canary answer the stable's requests under the same ids, and
// rollout.MinQuality judges the canary's AUC against the stable's on the
// labelled requests both answered (quality.Paired), with neither package
// importing the other. A canary as good as the stable is promoted.
func TestRolloutGuardOnLabelledTraffic(t *testing.T) {
	for _, c := range []struct {
		name      string
		noise     float64
		wantState rollout.PlanState
	}{
		{"worse canary rolls back", 1, rollout.PlanRolledBack},
		{"as good canary is promoted", 0, rollout.PlanSucceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clk := rollouttest.NewClock(start)
			qclk := quality.NewFakeClock(start)
			qm := newMonitor(t, binary, quality.WithClock(qclk), quality.WithDetectors(), quality.WithQueue(1<<14))

			// The request carries the true probability as input "x"; the
			// stable scores with it, the canary with noise of its own.
			var mu sync.Mutex
			r := rand.New(rand.NewPCG(7, 8))
			model := func(version string, noise float64) serving.Predictor {
				return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
					p := req.Inputs[0].Data().([]float64)[0]
					mu.Lock()
					s := (1-noise)*p + noise*r.Float64()
					mu.Unlock()
					out, _ := serving.NewTensor("score", []int64{1}, []float64{s})
					return &serving.Response{Model: req.Model, Version: version, Outputs: []serving.Tensor{out}}, nil
				})
			}
			rt, err := rollout.New("m", rollout.WithClock(clk), rollout.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			require.NoError(t, rt.Put("1", qm.Middleware()(model("1", 0))))
			require.NoError(t, rt.Put("2", qm.Middleware()(model("2", c.noise))))
			require.NoError(t, rt.Mirror("2", 100, rollout.WithMaxMirrors(1024)))
			require.NoError(t, rt.Start(rollout.Plan{
				Canary: "2", Stable: "1",
				Steps:    []rollout.Step{{Weight: 10, Hold: time.Minute}},
				Guards:   []rollout.Guard{rollout.MinQuality("AUC", qm.CompareFunc(quality.AUC, quality.Paired), 0.02, 300)},
				Interval: 20 * time.Second,
			}))

			const n = 800
			labels := make([]quality.Label, n)
			for i := range n {
				mu.Lock()
				p := r.Float64()
				y := b2f(r.Float64() < p)
				mu.Unlock()
				x, _ := serving.NewTensor("x", []int64{1}, []float64{p})
				id := fmt.Sprint("tx-", i)
				_, err := rt.Predict(context.Background(), &serving.Request{ID: id, Model: "m", Key: fmt.Sprint("user-", i), Inputs: []serving.Tensor{x}})
				require.NoError(t, err)
				labels[i] = quality.Label{ID: id, Value: y}
			}
			_, sh, ok := rt.Mirroring()
			require.True(t, ok)
			require.Eventually(t, func() bool {
				s := sh.Snapshot()
				return s.Sampled > n/2 && s.Completed+s.Dropped == s.Sampled
			}, 10*time.Second, time.Millisecond, "the mirror answers the stable's requests")

			// Before the labels the guard cannot judge: the plan waits.
			clk.Advance(20 * time.Second)
			p := rt.Status().Plan
			assert.Equal(t, rollout.PlanRunning, p.State)
			assert.Contains(t, p.Waiting, "rests on 0 of the 300")

			_, err = qm.Label(context.Background(), "m", labels)
			require.NoError(t, err)
			clk.Advance(time.Minute)
			p = rt.Status().Plan
			assert.Equal(t, c.wantState, p.State, "reason: %s", p.Reason)
			t.Logf("%s: %s", p.State, p.Reason)
			if c.wantState == rollout.PlanRolledBack {
				assert.Contains(t, p.Reason, `canary "2" AUC`)
			}
		})
	}
}

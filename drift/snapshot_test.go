package drift_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving/servingtest"
)

// Three replicas' merged snapshots give the statistics of one process that
// saw all the traffic: exactly for counts and binned statistics, to the
// last bits for sums added in another order.
func TestMergedSnapshotsEqualOneProcess(t *testing.T) {
	for _, c := range []struct {
		name      string
		reference int
		rows      int
		exact     bool
	}{
		{"small windows: raw samples", 800, 600, true},
		{"large windows: histograms", 5000, 4000, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			prof := referenceProfile(t, c.reference)
			opts := []drift.Option{drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(100000, 0))}
			all := newMonitor(t, opts...)
			var replicas [3]*drift.Monitor
			for i := range replicas {
				replicas[i] = newMonitor(t, opts...)
			}
			g := newGen(9)
			for i := 0; i*20 < c.rows; i++ {
				req := request(g.rows(20, 0.3))
				for _, m := range []*drift.Monitor{all, replicas[i%3]} {
					_, err := m.Middleware()(servingtest.Linear(2)).Predict(context.Background(), req)
					require.NoError(t, err)
				}
			}
			ctx := context.Background()
			one, err := all.Snapshot(ctx, "linear", "1")
			require.NoError(t, err)
			var snaps []*drift.Snapshot
			for _, r := range replicas {
				s, err := r.Snapshot(ctx, "linear", "1")
				require.NoError(t, err)
				// Snapshots travel as JSON between processes.
				b, err := json.Marshal(s)
				require.NoError(t, err)
				s, err = drift.DecodeSnapshot(bytes.NewReader(b))
				require.NoError(t, err)
				snaps = append(snaps, s)
			}
			merged, err := drift.MergeSnapshots(snaps...)
			require.NoError(t, err)
			assert.Equal(t, one.Rows, merged.Rows)

			want, err := drift.Evaluate(prof, one)
			require.NoError(t, err)
			got, err := drift.Evaluate(prof, merged)
			require.NoError(t, err)
			require.Len(t, got.Features, len(want.Features))
			for i := range want.Features {
				w, g := want.Features[i], got.Features[i]
				assert.Equal(t, c.exact, w.Exact, w.Name)
				assert.Equal(t, w.Exact, g.Exact, w.Name)
				assert.Equal(t, w.Count, g.Count)
				assert.Equal(t, w.Drifted, g.Drifted)
				assert.Equal(t, w.Bins, g.Bins)
				require.Len(t, g.Statistics, len(w.Statistics))
				for j := range w.Statistics {
					ws, gs := w.Statistics[j], g.Statistics[j]
					assert.Equal(t, ws.Statistic, gs.Statistic)
					assert.InDelta(t, ws.Value, gs.Value, 1e-12*math.Max(1, ws.Value), "%s %s", w.Name, ws.Statistic)
					assert.InDelta(t, ws.PValue, gs.PValue, 1e-12, "%s %s", w.Name, ws.Statistic)
					assert.InDelta(t, ws.Bound, gs.Bound, 1e-12, "%s %s", w.Name, ws.Statistic)
				}
			}
			assert.Equal(t, []string{"a", "score"}, got.Drifted)
		})
	}
}

func TestMergeRefusesOtherProfiles(t *testing.T) {
	ctx := context.Background()
	var snaps []*drift.Snapshot
	for _, n := range []int{500, 600} {
		m := newMonitor(t, drift.WithProfile(referenceProfile(t, n)))
		serve(t, m.Middleware()(servingtest.Linear(2)), newGen(1), 10, 10, 0)
		s, err := m.Snapshot(ctx, "linear", "1")
		require.NoError(t, err)
		snaps = append(snaps, s)
	}
	_, err := drift.MergeSnapshots(snaps...)
	assert.ErrorContains(t, err, "cannot merge")
	_, err = drift.Evaluate(referenceProfile(t, 700), snaps[0])
	assert.ErrorContains(t, err, "was not made with profile")
}

func TestLearnFromLiveTraffic(t *testing.T) {
	m := newMonitor(t, drift.WithWindow(drift.CountWindow(500, 0)), drift.WithHysteresis(1, 1, 1))
	require.NoError(t, m.Learn("linear", "", features, 1000))
	p := m.Middleware()(servingtest.Linear(2))
	g := newGen(10)
	serve(t, p, g, 1000, 50, 0)
	flush(t, m)
	prof, ok := m.Profile("linear", "1")
	require.True(t, ok, "learned")
	assert.Equal(t, "1", prof.Version)
	assert.Equal(t, int64(1000), prof.Features[0].Count)
	assert.True(t, m.Status("linear", "1").Monitored)
	_, ok = m.Profile("linear", "2")
	assert.False(t, ok, "version 2 learns its own")
	assert.True(t, m.Status("linear", "2").Learning)

	serve(t, p, g, 500, 50, 2)
	flush(t, m)
	st := m.Status("linear", "1")
	assert.True(t, st.Alarmed, "shift after learning: %+v", st)
}

package rollout_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The metrics carry the numbers of the snapshot, labelled by the primary's
// model and version, the challenger and the output.
func TestShadowTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	primary := servingtest.Static(mustTensor("score", []int64{2, 1}, []float32{0.9, 0.1})).
		WithMetadata(serving.Metadata{Name: "fraud", Version: "1"})
	challenger := servingtest.Static(mustTensor("score", []int64{2, 1}, []float32{0.8, 0.7}))
	s, err := rollout.NewShadow(challenger, rollout.WithShadowMeterProvider(mp),
		rollout.WithChallengerVersion("2"), rollout.WithMaxMirrors(16))
	require.NoError(t, err)
	p := s.Middleware()(primary)
	for range 3 {
		_, err := p.Predict(context.Background(), &serving.Request{Model: "fraud", Version: "1"})
		require.NoError(t, err)
	}
	ctx := context.Background()
	require.NoError(t, s.Shutdown(ctx)) // waits for the mirrors; metrics stop after it
	snap := s.Snapshot()

	// The latency histogram was recorded as mirrors completed; the
	// observable counters left with the closed shadow's callback.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := metrics(rm)
	dur := got["servekit.shadow.duration"].(metricdata.Histogram[float64])
	require.Len(t, dur.DataPoints, 2)
	for _, dp := range dur.DataPoints {
		assert.Equal(t, uint64(3), dp.Count)
		side, _ := dp.Attributes.Value("side")
		assert.Contains(t, []string{"primary", "shadow"}, side.AsString())
	}
	assert.NotContains(t, got, "servekit.shadow.pairs", "a closed shadow exports no counters")
	assert.Equal(t, int64(3), snap.Pairs)

	// An open shadow exports its counters and gauges.
	s2, err := rollout.NewShadow(challenger, rollout.WithShadowMeterProvider(mp),
		rollout.WithChallengerVersion("2"), rollout.WithMaxMirrors(16))
	require.NoError(t, err)
	defer s2.Close()
	p2 := s2.Middleware()(primary)
	for range 4 {
		_, err := p2.Predict(ctx, &serving.Request{Model: "fraud", Version: "1"})
		require.NoError(t, err)
	}
	waitCompleted(t, s2, 4)
	require.NoError(t, reader.Collect(ctx, &rm))
	got = metrics(rm)
	base := []attribute.KeyValue{attribute.String("model", "fraud"), attribute.String("version", "1"),
		attribute.String("challenger_version", "2")}
	pairs := got["servekit.shadow.pairs"].(metricdata.Sum[int64])
	require.Len(t, pairs.DataPoints, 1)
	assert.Equal(t, int64(4), pairs.DataPoints[0].Value)
	assert.Equal(t, attribute.NewSet(base...), pairs.DataPoints[0].Attributes)
	assert.True(t, pairs.IsMonotonic)

	decisions := got["servekit.shadow.decisions"].(metricdata.Sum[int64])
	byAgreed := map[bool]int64{}
	for _, dp := range decisions.DataPoints {
		a, _ := dp.Attributes.Value("agreed")
		o, _ := dp.Attributes.Value("output")
		assert.Equal(t, "score", o.AsString())
		byAgreed[a.AsBool()] = dp.Value
	}
	assert.Equal(t, map[bool]int64{true: 4, false: 4}, byAgreed) // row 1 flips: 0.1 vs 0.7

	agreement := got["servekit.shadow.agreement"].(metricdata.Gauge[float64])
	require.Len(t, agreement.DataPoints, 1)
	assert.Equal(t, 0.5, agreement.DataPoints[0].Value)
	assert.Equal(t, attribute.NewSet(append(base, attribute.String("output", "score"))...), agreement.DataPoints[0].Attributes)
	maxAbs := got["servekit.shadow.diff.abs.max"].(metricdata.Gauge[float64])
	o, _ := s2.Snapshot().Output("score")
	assert.Equal(t, o.MaxAbsDiff, maxAbs.DataPoints[0].Value)
	assert.InDelta(t, 0.6, o.MaxAbsDiff, 1e-6)
}

func metrics(rm metricdata.ResourceMetrics) map[string]metricdata.Aggregation {
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = m.Data
		}
	}
	return got
}

// waitCompleted waits until n mirrors have completed, without closing.
func waitCompleted(t *testing.T, s *rollout.Shadow, n int64) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("%d mirrors completed", n), func() bool { return s.Snapshot().Completed >= n })
}

package quality_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/quality"
)

// The monitor's metrics, read at collection time, are the published
// results: the last window's estimate and band, the realized values, the
// coverage, the alarms and the counters.
func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ref := reference(t, 5000)
	m := newMonitor(t, quality.WithMeterProvider(mp), quality.WithReference(ref), quality.WithWindow(quality.CountWindow(500)),
		quality.WithQueue(1<<14), quality.WithHysteresis(1, 1), quality.WithLabelDelay(0))
	p := m.Middleware()(echo)
	s, y := newWorld(9).draw(regime{0, 1, 1, true}, 500)
	feed(t, p, "1", "r", 1, s)
	labelAll(t, m, "r", y[:450])
	labelAll(t, m, "zz", []float64{1})
	require.NoError(t, m.Flush(context.Background()))
	r := m.Results("m", "1")[0]

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.Equal(t, quality.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	got := map[string]metricdata.Aggregation{}
	for _, x := range rm.ScopeMetrics[0].Metrics {
		got[x.Name] = x.Data
	}
	find := func(name string, kv ...string) (float64, bool) {
		var a []attribute.KeyValue
		for i := 0; i < len(kv); i += 2 {
			a = append(a, attribute.String(kv[i], kv[i+1]))
		}
		set := attribute.NewSet(a...)
		switch d := got[name].(type) {
		case metricdata.Gauge[float64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&set) {
					return p.Value, true
				}
			}
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&set) {
					return float64(p.Value), true
				}
			}
		}
		return 0, false
	}
	acc, _ := r.Metric(quality.Accuracy)
	mv := []string{"model", "m", "version", "1", "metric", "accuracy"}
	for name, want := range map[string]float64{
		"servekit.quality.estimated":       acc.Estimated.Value,
		"servekit.quality.estimated_lower": acc.Estimated.Lower,
		"servekit.quality.estimated_upper": acc.Estimated.Upper,
		"servekit.quality.realized":        *acc.Realized,
		"servekit.quality.reference":       *acc.Reference,
	} {
		v, ok := find(name, mv...)
		require.True(t, ok, name)
		assert.InDelta(t, want, v, 1e-12, name)
	}
	v, ok := find("servekit.quality.labels", "outcome", "matched")
	require.True(t, ok)
	assert.Equal(t, 450.0, v)
	v, _ = find("servekit.quality.labels", "outcome", "unmatched")
	assert.Equal(t, 1.0, v)
	v, _ = find("servekit.quality.predictions")
	assert.Equal(t, 500.0, v)
	v, ok = find("servekit.quality.label_delay", "model", "m", "version", "1", "quantile", "0.5")
	assert.True(t, ok)
	assert.GreaterOrEqual(t, v, 0.0)
	st := m.Status("m", "1")
	require.True(t, st.Alarmed, "concept shift, settled at once (no label delay), one window raises with hysteresis 1")
	v, ok = find("servekit.quality.alarm", "model", "m", "version", "1", "check", st.Alarms[0])
	assert.True(t, ok)
	assert.Equal(t, 1.0, v)
	v, ok = find("servekit.quality.label_coverage", "model", "m", "version", "1")
	require.True(t, ok)
	assert.InDelta(t, 0.9, v, 1e-12, "450 of 500 labelled")
}

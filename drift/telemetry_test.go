package drift_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m := newMonitor(t, drift.WithMeterProvider(mp), drift.WithProfile(referenceProfile(t, 2000)),
		drift.WithWindow(drift.CountWindow(500, 0)), drift.WithHysteresis(1, 1, 1))
	p := m.Middleware()(servingtest.Linear(2))
	serve(t, p, newGen(11), 500, 50, 3)
	flush(t, m)
	last := m.Results("linear", "1")[0]

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.Equal(t, drift.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	got := map[string]metricdata.Aggregation{}
	for _, x := range rm.ScopeMetrics[0].Metrics {
		got[x.Name] = x.Data
	}
	attrs := func(kv ...string) attribute.Set {
		var a []attribute.KeyValue
		for i := 0; i < len(kv); i += 2 {
			a = append(a, attribute.String(kv[i], kv[i+1]))
		}
		return attribute.NewSet(a...)
	}
	find := func(name string, set attribute.Set) (float64, bool) {
		switch d := got[name].(type) {
		case metricdata.Gauge[float64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&set) {
					return p.Value, true
				}
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&set) {
					return float64(p.Value), true
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
	a, _ := last.Feature("a")
	for _, v := range a.Statistics {
		got, ok := find("servekit.drift.statistic", attrs("model", "linear", "version", "1", "feature", "a", "statistic", string(v.Statistic)))
		if assert.True(t, ok, v.Statistic) {
			assert.Equal(t, v.Value, got, v.Statistic)
		}
	}
	pv, ok := find("servekit.drift.p_value", attrs("model", "linear", "version", "1", "feature", "a", "statistic", "ks"))
	assert.True(t, ok)
	ks, _ := a.Value(drift.KS)
	assert.Equal(t, ks.PValue, pv)
	alarm, _ := find("servekit.drift.alarm", attrs("model", "linear", "version", "1", "feature", "a"))
	assert.Equal(t, 1.0, alarm)
	alarm, _ = find("servekit.drift.alarm", attrs("model", "linear", "version", "1", "feature", "b"))
	assert.Equal(t, 0.0, alarm)
	rows, _ := find("servekit.drift.rows", attribute.NewSet())
	assert.Equal(t, 500.0, rows)
	windows, _ := find("servekit.drift.windows", attrs("model", "linear", "version", "1"))
	assert.Equal(t, 1.0, windows)
	missing, _ := a.Quality.Rate(drift.CheckMissing)
	dq, ok := find("servekit.drift.data_quality", attrs("model", "linear", "version", "1", "feature", "a", "check", "missing"))
	assert.True(t, ok)
	assert.Equal(t, missing.Rate, dq)
}

package cache_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	c := newCache(t, cache.WithMeterProvider(mp), cache.WithTracerProvider(tp),
		cache.WithMaxEntries(1))
	p := c.Middleware()(servingtest.Linear(4))

	// cache.lookup spans are children: they appear inside a trace.
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	req := row(1)
	req.Version = "3"
	for _, r := range []*serving.Request{req, req, row(2)} { // miss, hit, miss
		_, err := p.Predict(ctx, r)
		require.NoError(t, err)
	}
	parent.End()
	_, err := p.Predict(context.Background(), row(5)) // untraced: no span
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.Equal(t, cache.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	got := map[string]metricdata.Aggregation{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		got[m.Name] = m.Data
	}

	hits := got["servekit.cache.hits"].(metricdata.Sum[int64])
	require.Len(t, hits.DataPoints, 1)
	assert.Equal(t, int64(1), hits.DataPoints[0].Value)
	assert.Equal(t, attribute.NewSet(attribute.String("model", "linear"), attribute.String("version", "3"),
		attribute.String("tier", "l1")), hits.DataPoints[0].Attributes)

	assert.Equal(t, int64(3), sum(got["servekit.cache.misses"]))
	assert.Equal(t, int64(2), sum(got["servekit.cache.evictions"]))
	assert.Equal(t, int64(1), gauge(got["servekit.cache.entries"]))
	assert.Equal(t, c.Stats().Bytes, gauge(got["servekit.cache.bytes"]))

	var results []string
	for _, s := range spans.Ended() {
		if s.Name() != "cache.lookup" {
			continue
		}
		assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
		for _, a := range s.Attributes() {
			if a.Key == "cache.result" {
				results = append(results, a.Value.AsString())
			}
		}
	}
	assert.Equal(t, []string{"miss", "hit_l1", "miss"}, results)
}

func sum(a metricdata.Aggregation) int64 {
	var n int64
	if s, ok := a.(metricdata.Sum[int64]); ok {
		for _, d := range s.DataPoints {
			n += d.Value
		}
	}
	return n
}

func gauge(a metricdata.Aggregation) int64 {
	if g, ok := a.(metricdata.Gauge[int64]); ok && len(g.DataPoints) == 1 {
		return g.DataPoints[0].Value
	}
	return -1
}

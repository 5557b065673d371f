package limit_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	g := newGate()
	model := servingtest.Func(g.Predict).WithMetadata(serving.Metadata{Name: "fraud", Version: "3"})
	l, err := limit.New(model, limit.WithMaxInFlight(1), limit.WithMaxQueue(1), limit.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan result, 2)
	go call(context.Background(), l, "a", out)
	<-g.entered
	go call(context.Background(), l, "b", out)
	poll.Until(t, "b queued", func() bool { return l.Stats().Waiting == 1 })
	if _, err := l.Predict(context.Background(), &serving.Request{Model: "fraud"}); serving.CodeOf(err) != serving.ResourceExhausted {
		t.Fatalf("third: %v", err)
	}
	got := collect(t, reader)
	if v := gauge(t, got, limit.MetricInFlight); v != 1 {
		t.Errorf("%s = %d, want 1", limit.MetricInFlight, v)
	}
	if v := gauge(t, got, limit.MetricQueueDepth); v != 1 {
		t.Errorf("%s = %d, want 1", limit.MetricQueueDepth, v)
	}
	rej := got[limit.MetricRejected].(metricdata.Sum[int64]).DataPoints
	if len(rej) != 1 || rej[0].Value != 1 || attr(rej[0], "reason") != "queue_full" || attr(rej[0], "model") != "fraud" || attr(rej[0], "version") != "3" {
		t.Errorf("%s = %+v, want one queue_full for fraud 3", limit.MetricRejected, rej)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	<-out
	<-out
	got = collect(t, reader)
	if h := got[limit.MetricQueueDuration].(metricdata.Histogram[float64]).DataPoints; len(h) != 1 || h[0].Count != 1 {
		t.Errorf("%s = %+v, want one request that waited", limit.MetricQueueDuration, h)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect(t, reader)[limit.MetricInFlight]; ok {
		t.Error("a closed limiter still reports its gauges")
	}
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func gauge(t *testing.T, got map[string]metricdata.Aggregation, name string) int64 {
	t.Helper()
	s, ok := got[name].(metricdata.Sum[int64])
	if !ok || len(s.DataPoints) != 1 {
		t.Fatalf("%s: %+v, want one data point", name, got[name])
	}
	return s.DataPoints[0].Value
}

func attr(dp metricdata.DataPoint[int64], key string) string {
	v, _ := dp.Attributes.Value(attribute.Key(key))
	return v.AsString()
}

package batch_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	clk := newFakeClock()
	b := mustNew(t, servingtest.Linear(1), batch.WithMeterProvider(mp), batch.WithTracerProvider(tp),
		batch.WithAdaptive(false), batch.WithMaxDelay(time.Millisecond), batch.WithClock(clk))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	a := async(ctx, b, servingtest.Rows(1, 2, 0))
	c := async(ctx, b, servingtest.Rows(1, 1, 0))
	waitQueued(t, b, 2)
	cctx, cancel := context.WithCancel(context.Background())
	gone := async(cctx, b, servingtest.Rows(1, 1, 0))
	waitQueued(t, b, 3)
	cancel()
	<-gone
	clk.Advance(time.Millisecond)
	<-a
	<-c
	parent.End()
	poll.Until(t, "one batch recorded", func() bool { return b.Stats().Batches == 1 })

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != batch.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, batch.ScopeName)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m.Data
		}
	}
	model := attribute.String("model", "linear")
	histCount := func(name string) (count uint64, sum float64) {
		switch h := got[name].(type) {
		case metricdata.Histogram[float64]:
			for _, p := range h.DataPoints {
				if v, _ := p.Attributes.Value("model"); v != model.Value {
					t.Errorf("%s: attributes %v", name, p.Attributes)
				}
				count, sum = count+p.Count, sum+p.Sum
			}
		case metricdata.Histogram[int64]:
			for _, p := range h.DataPoints {
				count, sum = count+p.Count, sum+float64(p.Sum)
			}
		default:
			t.Errorf("%s: %T, want a histogram", name, got[name])
		}
		return count, sum
	}
	if n, _ := histCount("servekit.batch.queue.duration"); n != 2 {
		t.Errorf("queue.duration count %d, want 2 (per request that ran)", n)
	}
	if n, _ := histCount("servekit.batch.run.duration"); n != 1 {
		t.Errorf("run.duration count %d, want 1", n)
	}
	if n, sum := histCount("servekit.batch.size"); n != 1 || sum != 3 {
		t.Errorf("batch.size: %d batches, %v rows; want 1, 3", n, sum)
	}
	if n, sum := histCount("servekit.batch.requests"); n != 1 || sum != 2 {
		t.Errorf("batch.requests: %d batches, %v requests; want 1, 2", n, sum)
	}
	if d, ok := got["servekit.batch.queue.depth"].(metricdata.Sum[int64]); !ok || len(d.DataPoints) != 1 || d.DataPoints[0].Value != 0 {
		t.Errorf("queue.depth: %+v, want one point at 0", got["servekit.batch.queue.depth"])
	}
	// Every reason has a series from the start (dashboards read 0, not
	// "no data"); only the cancelled caller was counted.
	rej, ok := got["servekit.batch.rejected"].(metricdata.Sum[int64])
	if !ok || len(rej.DataPoints) != len(batch.RejectReasons()) {
		t.Fatalf("rejected: %+v, want one point per reason %v", got["servekit.batch.rejected"], batch.RejectReasons())
	}
	for _, p := range rej.DataPoints {
		r, _ := p.Attributes.Value("reason")
		if want := map[bool]int64{true: 1}[r.AsString() == "canceled"]; p.Value != want {
			t.Errorf("rejected{reason=%s} = %d, want %d", r.AsString(), p.Value, want)
		}
	}

	names := map[string]int{}
	for _, s := range spans.Ended() {
		names[s.Name()]++
		if s.Name() == "batch.run" && len(s.Links()) != 2 {
			t.Errorf("batch.run has %d links, want 2", len(s.Links()))
		}
		if s.Name() == "batch.queue" && s.Parent().SpanID() != parent.SpanContext().SpanID() && s.Parent().IsValid() {
			t.Errorf("batch.queue parent %v", s.Parent())
		}
	}
	if names["batch.queue"] != 2 || names["batch.run"] != 1 { // the cancelled caller was not traced
		t.Errorf("spans %v, want 2 batch.queue and 1 batch.run", names)
	}
}

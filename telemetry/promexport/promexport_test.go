package promexport_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
	"github.com/servekit/servekit/telemetry/promexport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func scrape(t *testing.T, e *promexport.Exporter) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return string(b)
}

// The project's metric names, recorded here as their packages record them,
// and the Prometheus names the exporter (v0.69) turns them into: dots become
// underscores, a unit becomes a suffix (s → _seconds, By → _bytes), a
// {curly} unit is dropped, counters get _total, histograms get
// _bucket/_sum/_count. The dashboard and the alert rules use the right-hand
// column; examples/monitoring checks them against the running example.
var names = []struct {
	otel, kind, unit, prom string
}{
	{"servekit.request.duration", "histogram", "s", "servekit_request_duration_seconds"},
	{"servekit.requests", "counter", "{request}", "servekit_requests_total"},
	{"servekit.requests.inflight", "updown", "{request}", "servekit_requests_inflight"},
	{"servekit.model.load.duration", "histogram", "s", "servekit_model_load_duration_seconds"},
	{"servekit.model.warmup.duration", "histogram", "s", "servekit_model_warmup_duration_seconds"},
	{"servekit.model.inference.duration", "histogram", "s", "servekit_model_inference_duration_seconds"},
	{"servekit.batch.queue.duration", "histogram", "s", "servekit_batch_queue_duration_seconds"},
	{"servekit.batch.run.duration", "histogram", "s", "servekit_batch_run_duration_seconds"},
	{"servekit.batch.size", "histogram", "{row}", "servekit_batch_size"},
	{"servekit.batch.requests", "histogram", "{request}", "servekit_batch_requests"},
	{"servekit.batch.queue.depth", "updown", "{row}", "servekit_batch_queue_depth"},
	{"servekit.batch.rejected", "counter", "{request}", "servekit_batch_rejected_total"},
	{"servekit.cache.hits", "counter", "", "servekit_cache_hits_total"},
	{"servekit.cache.misses", "counter", "", "servekit_cache_misses_total"},
	{"servekit.cache.coalesced", "counter", "", "servekit_cache_coalesced_total"},
	{"servekit.cache.evictions", "counter", "", "servekit_cache_evictions_total"},
	{"servekit.cache.bytes", "gauge", "By", "servekit_cache_bytes"},
	{"servekit.cache.entries", "gauge", "", "servekit_cache_entries"},
	{"servekit.cache.l2.errors", "counter", "", "servekit_cache_l2_errors_total"},
}

func TestPrometheusNames(t *testing.T) {
	ctx := context.Background()
	e, err := promexport.Setup(ctx, promexport.WithoutGlobal())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(ctx)
	m := e.MeterProvider.Meter("test")
	at := metric.WithAttributes(attribute.String("model", "m"), attribute.String("version", "1"))
	for _, n := range names {
		u := metric.WithUnit(n.unit)
		switch n.kind {
		case "histogram":
			h, _ := m.Float64Histogram(n.otel, u)
			h.Record(ctx, 0.003, at)
		case "counter":
			c, _ := m.Int64Counter(n.otel, u)
			c.Add(ctx, 1, at)
		case "updown":
			c, _ := m.Int64UpDownCounter(n.otel, u)
			c.Add(ctx, 1, at)
		case "gauge":
			g, _ := m.Int64Gauge(n.otel, u)
			g.Record(ctx, 1, at)
		}
	}
	text := scrape(t, e)
	for _, n := range names {
		want := n.prom
		if n.kind == "histogram" {
			want += "_bucket{"
		} else {
			want += "{"
		}
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("%s: no %s… in the scrape", n.otel, want)
		}
	}
	// The views: durations share telemetry.DurationBuckets, batch sizes get
	// powers of two.
	for _, s := range []string{
		`servekit_batch_queue_duration_seconds_bucket{le="1e-05"`,
		`servekit_model_load_duration_seconds_bucket{le="10"`,
		`servekit_batch_size_bucket{le="1024"`,
		"\ntarget_info{",
	} {
		if !strings.Contains(strings.ReplaceAll(text, `model="m",otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",version="1",`, ""), s) {
			t.Errorf("scrape lacks %s", s)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestRuntimeAndMiddleware(t *testing.T) {
	ctx := context.Background()
	e, err := promexport.Setup(ctx, promexport.WithoutGlobal())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(ctx)
	p := telemetry.Middleware(telemetry.WithMeterProvider(e.MeterProvider))(servingtest.Linear(2))
	if _, err := p.Predict(ctx, servingtest.Rows(2, 1, 0)); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, e)
	for _, s := range []string{
		`servekit_requests_total{code="ok",model="linear"`,
		`servekit_request_duration_seconds_bucket{code="ok",model="linear"`,
		"servekit_requests_inflight{",
		"go_goroutine_count{",
		"go_memory_used_bytes{",
		"go_memory_allocated_bytes_total{",
		"go_gc_cycles_total{",
		`process_cpu_time_seconds_total{cpu_mode="user"`,
		"process_memory_usage_bytes{",
	} {
		if !strings.Contains(text, "\n"+s) {
			t.Errorf("scrape lacks %s", s)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestGlobalAndSpans(t *testing.T) {
	ctx := context.Background()
	mp, tp, prop := otel.GetMeterProvider(), otel.GetTracerProvider(), otel.GetTextMapPropagator()
	defer func() {
		otel.SetMeterProvider(mp)
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	}()
	spans := tracetest.NewInMemoryExporter()
	e, err := promexport.Setup(ctx, promexport.WithSpanExporter(spans), promexport.WithoutRuntime())
	if err != nil {
		t.Fatal(err)
	}
	p := telemetry.Middleware()(servingtest.Linear(2)) // globals
	if _, err := p.Predict(ctx, servingtest.Rows(2, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(scrape(t, e), "\nservekit_requests_total{") {
		t.Error("the global MeterProvider does not feed the exporter")
	}
	if f := strings.Join(otel.GetTextMapPropagator().Fields(), " "); !strings.Contains(f, "traceparent") {
		t.Errorf("propagator fields %v, want traceparent among them", f)
	}
	if err := e.TracerProvider.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	// Read before Shutdown, which empties the in-memory exporter.
	if got := spans.GetSpans(); len(got) != 1 || got[0].Name != telemetry.SpanName {
		t.Errorf("exported spans %v, want one %s", got, telemetry.SpanName)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

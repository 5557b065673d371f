package telemetry_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
	"github.com/servekit/servekit/telemetry/promexport"
)

// discard is a span exporter that drops everything, so the benchmark pays
// for a real BatchSpanProcessor's enqueue but not for an exporter's I/O.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// Instrumentations compared by the benchmarks, bare first:
//
//	noop            the API's no-op providers (a library with no SDK installed)
//	sdk-unsampled   SDK metrics into a ManualReader; SDK traces sampled
//	                ParentBased(NeverSample) into a BatchSpanProcessor: what
//	                production looks like between sampled requests
//	prom-unsampled  the same with the MeterProvider a binary gets from
//	                promexport.Setup (Prometheus exporter, servekit's views)
//	sdk             SDK metrics, every span sampled and batched
func instrumentations(b *testing.B) []struct {
	name string
	mw   serving.Middleware
} {
	ctx := context.Background()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	prom, err := promexport.Setup(ctx, promexport.WithoutGlobal(), promexport.WithoutRuntime())
	if err != nil {
		b.Fatal(err)
	}
	sampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(discard{}))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
		sdktrace.WithBatcher(discard{}))
	b.Cleanup(func() {
		_ = mp.Shutdown(ctx)
		_ = prom.Shutdown(ctx)
		_ = sampled.Shutdown(ctx)
		_ = unsampled.Shutdown(ctx)
	})
	return []struct {
		name string
		mw   serving.Middleware
	}{
		{"bare", func(p serving.Predictor) serving.Predictor { return p }},
		{"noop", telemetry.Middleware(telemetry.WithMeterProvider(metricnoop.NewMeterProvider()),
			telemetry.WithTracerProvider(tracenoop.NewTracerProvider()))},
		{"sdk-unsampled", telemetry.Middleware(telemetry.WithMeterProvider(mp), telemetry.WithTracerProvider(unsampled))},
		{"prom-unsampled", telemetry.Middleware(telemetry.WithMeterProvider(prom.MeterProvider),
			telemetry.WithTracerProvider(unsampled))},
		{"sdk", telemetry.Middleware(telemetry.WithMeterProvider(mp), telemetry.WithTracerProvider(sampled))},
	}
}

// BenchmarkLinear measures what instrumentation adds per request on the
// cheapest model there is; compare the lines of one run (ns/op minus bare).
func BenchmarkLinear(b *testing.B) {
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			p := in.mw(servingtest.Linear(4))
			req := servingtest.Rows(4, 1, 0)
			req.Version = "1"
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParallel is the same under concurrent load, where shared
// counters and the attribute cache could contend.
func BenchmarkParallel(b *testing.B) {
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			p := in.mw(servingtest.Linear(4))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := servingtest.Rows(4, 1, 0)
				for pb.Next() {
					if _, err := p.Predict(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

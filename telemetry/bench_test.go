package telemetry_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
)

// discard is a span exporter that drops everything, so the benchmark pays
// for a real BatchSpanProcessor's enqueue but not for an exporter's I/O.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// Instrumentations compared by the benchmarks, bare first. "sdk" is a real
// SDK MeterProvider with a ManualReader and a TracerProvider that samples
// every span into a BatchSpanProcessor.
func instrumentations(b *testing.B) []struct {
	name string
	mw   serving.Middleware
} {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(discard{}))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()),
		sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	b.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
		_ = unsampled.Shutdown(context.Background())
	})
	return []struct {
		name string
		mw   serving.Middleware
	}{
		{"bare", func(p serving.Predictor) serving.Predictor { return p }},
		{"noop", telemetry.Middleware(telemetry.WithMeterProvider(metricnoop.NewMeterProvider()),
			telemetry.WithTracerProvider(tracenoop.NewTracerProvider()))},
		{"sdk-metrics-unsampled", telemetry.Middleware(telemetry.WithMeterProvider(mp),
			telemetry.WithTracerProvider(unsampled))},
		{"sdk", telemetry.Middleware(telemetry.WithMeterProvider(mp), telemetry.WithTracerProvider(tp))},
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

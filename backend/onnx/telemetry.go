package onnx

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// ScopeName is the instrumentation scope of the package's metrics and spans.
const ScopeName = "github.com/servekit/servekit/backend/onnx"

// telemetry records the package's metrics and spans. Attribute sets, and
// the record options carrying them, are built once per model and code, so
// recording costs no allocation.
type telemetry struct {
	tracer   trace.Tracer
	load     metric.Float64Histogram
	warmup   metric.Float64Histogram
	run      metric.Float64Histogram
	model    attribute.Set                               // model, version
	loadAttr attribute.Set                               // model, version, device
	byCode   [serving.Internal + 1][]metric.RecordOption // an attribute set: model, version, code
	spanAttr []attribute.KeyValue
}

func newTelemetry(c config, md serving.Metadata) telemetry {
	mp, tp := c.meters, c.tracers
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(ScopeName)
	t := telemetry{tracer: tp.Tracer(ScopeName)}
	// Instrument errors only come from invalid names or units, fixed here;
	// the API then hands back a working no-op instrument.
	t.load, _ = meter.Float64Histogram("servekit.model.load.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to load a model and create its ONNX Runtime session; device says where it runs (cpu, cuda:N)."))
	t.warmup, _ = meter.Float64Histogram("servekit.model.warmup.duration", metric.WithUnit("s"),
		metric.WithDescription("Time of the warm-up runs at load."))
	t.run, _ = meter.Float64Histogram("servekit.model.inference.duration", metric.WithUnit("s"),
		metric.WithDescription("Time of one ONNX Runtime run, conversions included."))
	kv := []attribute.KeyValue{attribute.String("model", md.Name), attribute.String("version", md.Version)}
	t.model = attribute.NewSet(kv...)
	// The device goes on the load metric only: it is fixed for the model's
	// life, and a query for models that fell back to the CPU needs one
	// series per load, not per run.
	t.loadAttr = attribute.NewSet(append(kv[:2:2], attribute.String("device", md.Device))...)
	t.spanAttr = kv
	for c := range t.byCode {
		set := attribute.NewSet(append(kv[:2:2], attribute.String("code", serving.Code(c).String()))...)
		t.byCode[c] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	return t
}

func (t *telemetry) loaded(d time.Duration) {
	t.load.Record(context.Background(), d.Seconds(), metric.WithAttributeSet(t.loadAttr))
}

func (t *telemetry) warmedUp(d time.Duration) {
	t.warmup.Record(context.Background(), d.Seconds(), metric.WithAttributeSet(t.model))
}

// startRun starts the onnx.run span as a child of a recording span, and
// otherwise returns nil: a bare Predict outside any trace does not start
// a root trace, and the untraced path then costs no allocation (a no-op
// tracer's Start alone cost 0.3 µs here) and ran need not ask the span
// again.
func (t *telemetry) startRun(ctx context.Context) trace.Span {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return nil
	}
	_, span := t.tracer.Start(ctx, "onnx.run", trace.WithAttributes(t.spanAttr...))
	return span
}

// ran ends the run's span, if startRun started one, and records the run's
// duration under its outcome when metered (the histogram was enabled as
// the run began; took is then the run's time).
func (t *telemetry) ran(ctx context.Context, span trace.Span, metered bool, took time.Duration, err error) {
	if !metered && span == nil {
		return
	}
	code := serving.OK
	if err != nil {
		if code = serving.CodeOf(err); int(code) >= len(t.byCode) {
			code = serving.Internal
		}
	}
	if metered {
		t.run.Record(ctx, took.Seconds(), t.byCode[code]...)
	}
	if span == nil {
		return
	}
	span.SetAttributes(attribute.String("code", code.String()))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// SpanName is the name of the span started for every request.
const SpanName = "servekit.predict"

// Metric names recorded by the middleware.
const (
	MetricRequests = "servekit.requests"
	MetricDuration = "servekit.request.duration"
	MetricInflight = "servekit.requests.inflight"
)

// instruments are created once per Middleware call and shared by every
// Predictor it wraps, with the attribute cache.
type instruments struct {
	tracer   trace.Tracer
	requests metric.Int64ObservableCounter
	duration metric.Float64Histogram
	inflight metric.Int64ObservableUpDownCounter
	cache    attrCache
}

func newInstruments(c config) *instruments {
	m := c.mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	in := &instruments{
		tracer: c.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version)),
	}
	var err error
	// On error the API still returns a usable no-op instrument; instrumentation
	// must never stop a model from serving, so the error goes to otel.Handle.
	// The two counters are asynchronous: counted with atomics per
	// (model, version) and observed at collection, which is what a scrape
	// sees anyway. A synchronous SDK counter costs a measurement per
	// request (option resolution, attribute dedup, a map lookup by set),
	// a quarter of the instrumented path; an atomic add costs nanoseconds.
	// The registration lives as long as the MeterProvider; Middleware is
	// meant to be called once per chain, not per request.
	if in.requests, err = m.Int64ObservableCounter(MetricRequests,
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered, by model, version and outcome code.")); err != nil {
		otel.Handle(err)
	}
	if in.duration, err = m.Float64Histogram(MetricDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Time to answer a request, by model, version and outcome code."),
		metric.WithExplicitBucketBoundaries(DurationBuckets()...)); err != nil {
		otel.Handle(err)
	}
	if in.inflight, err = m.Int64ObservableUpDownCounter(MetricInflight,
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests being answered now, by model and requested version.")); err != nil {
		otel.Handle(err)
	}
	if _, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		in.cache.observe(o, in.inflight, in.requests)
		return nil
	}, in.inflight, in.requests); err != nil {
		otel.Handle(err)
	}
	return in
}

// Middleware returns a serving.Middleware that records, for every request,
// the span servekit.predict and the metrics servekit.requests,
// servekit.request.duration and servekit.requests.inflight. It never changes
// a result or an error. Instruments are created once here and shared by
// every Predictor the middleware wraps.
func Middleware(opts ...Option) serving.Middleware {
	in := newInstruments(newConfig(opts))
	return func(next serving.Predictor) serving.Predictor {
		return &Predictor{next: next, in: in}
	}
}

// New wraps next in the instrumentation of Middleware.
func New(next serving.Predictor, opts ...Option) *Predictor {
	return &Predictor{next: next, in: newInstruments(newConfig(opts))}
}

// epoch is a monotonic reading taken once: time.Since(epoch) reads only
// the monotonic clock, where time.Now reads the wall clock as well. On
// these VMs a clock read costs ~80 ns, so timing a request with two reads
// instead of three is a tenth of the SDK path.
var epoch = time.Now()

// Predictor is the instrumenting layer returned by New and Middleware. It is
// safe for concurrent use. It holds nothing of its own to release; Close
// closes the Predictor it wraps, which it owns (see serving.Middleware).
type Predictor struct {
	next   serving.Predictor
	in     *instruments
	closed atomic.Bool
}

var _ serving.Wrapper = (*Predictor)(nil)

// Unwrap implements serving.Wrapper.
func (p *Predictor) Unwrap() serving.Predictor { return p.next }

// Close closes the wrapped Predictor (serving.Close), the first time.
func (p *Predictor) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return serving.Close(p.next)
}

// Predict asks the wrapped Predictor inside a servekit.predict span and
// records the outcome. The span is the parent of the spans the layers below
// start from ctx (cache.lookup, batch.queue, batch.run, onnx.run), and is
// itself the child of any span already in ctx, such as one the HTTP handler
// extracted from a W3C traceparent header.
//
// servekit.requests.inflight is labelled with the requested model and
// version (it must be the same on the way in and out); servekit.requests and
// servekit.request.duration with the version that answered
// (Response.Version) when there is one, so a router resolving "latest" or
// splitting a canary shows up per real version.
func (p *Predictor) Predict(ctx context.Context, req *serving.Request) (resp *serving.Response, err error) {
	in := p.in
	k := key{req.Model, req.Version}
	a := in.cache.get(k)
	start := time.Since(epoch)
	// Attributes are set after Start, and only on a recording span: given to
	// Start they cost a slice growth even when the sampler drops the span
	// (~15% of the instrumented path). Samplers therefore decide without
	// model and version; the parent-based and ratio samplers never look.
	// No options: the span kind is internal by default, and an option
	// costs a config pass even for spans the sampler drops.
	ctx, span := in.tracer.Start(ctx, SpanName)
	if span.IsRecording() {
		span.SetAttributes(a.span...)
		if req.ID != "" {
			span.SetAttributes(keyRequestID.String(req.ID))
		}
	}
	live := a.counts()
	live.inflight.Add(1)
	// Deferred so that a panic below (net/http recovers them per request)
	// does not leave a request in flight forever or a span open. The panic
	// is not recovered: it goes on with its original stack.
	returned := false
	defer func() {
		elapsed := (time.Since(epoch) - start).Seconds()
		live.inflight.Add(-1)
		code := serving.CodeOf(err)
		if !returned {
			code = serving.Internal
		}
		ao := a
		if resp != nil && resp.Version != "" && resp.Version != k.version {
			ao = in.cache.get(key{req.Model, resp.Version})
		}
		slot := slotOf(code)
		ao.counts().answered[slot].Add(1)
		in.duration.Record(ctx, elapsed, ao.record[slot]...)
		if code != serving.OK && span.IsRecording() {
			span.SetAttributes(keyCode.String(slotName(slot)))
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			} else {
				span.SetStatus(codes.Error, "panic")
			}
		}
		span.End()
	}()
	resp, err = p.next.Predict(ctx, req)
	returned = true
	return resp, err
}

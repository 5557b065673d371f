package promexport

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/servekit/servekit/telemetry"
)

// Option configures Setup.
type Option interface{ apply(*config) }

type config struct {
	registry *prometheus.Registry
	res      *resource.Resource
	spans    sdktrace.SpanExporter
	global   bool
	runtime  bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithRegistry exports into reg, which may already hold other collectors,
// instead of a fresh registry.
func WithRegistry(reg *prometheus.Registry) Option {
	return optionFunc(func(c *config) { c.registry = reg })
}

// WithResource describes the service (service.name, version…); Prometheus
// shows it as the target_info series. The default is resource.Default().
func WithResource(r *resource.Resource) Option {
	return optionFunc(func(c *config) { c.res = r })
}

// WithSpanExporter also builds a TracerProvider that samples by the parent's
// decision (every root) and exports through exp in batches. Without it Setup
// installs no TracerProvider: spans stay no-op, and W3C trace context still
// flows through ctx to outgoing calls.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return optionFunc(func(c *config) { c.spans = exp })
}

// WithoutGlobal leaves otel's global providers and propagator alone; pass
// Exporter.MeterProvider (and TracerProvider) to each package's
// WithMeterProvider option instead.
func WithoutGlobal() Option { return optionFunc(func(c *config) { c.global = false }) }

// WithoutRuntime skips StartRuntime (Go runtime and process metrics).
func WithoutRuntime() Option { return optionFunc(func(c *config) { c.runtime = false }) }

// Exporter is the SDK side of servekit's telemetry in a binary: a
// MeterProvider read by Prometheus, and optionally a TracerProvider.
type Exporter struct {
	// MeterProvider feeds the Prometheus registry.
	MeterProvider *sdkmetric.MeterProvider
	// TracerProvider is nil unless WithSpanExporter was given.
	TracerProvider *sdktrace.TracerProvider
	registry       *prometheus.Registry
	shutdown       sync.Once
	shutdownErr    error // set once, under shutdown
}

// Setup builds the SDK MeterProvider with the Prometheus exporter and
// servekit's histogram views, and by default installs it as otel's global
// MeterProvider (so every servekit package, left with its default options,
// records into it), installs the W3C trace-context and baggage propagator
// that serving/httpapi extracts with, and starts StartRuntime. Call
// Shutdown when the binary exits.
func Setup(ctx context.Context, opts ...Option) (*Exporter, error) {
	c := config{global: true, runtime: true}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.registry == nil {
		c.registry = prometheus.NewRegistry()
	}
	if c.res == nil {
		c.res = resource.Default()
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(c.registry))
	if err != nil {
		return nil, err
	}
	e := &Exporter{registry: c.registry}
	e.MeterProvider = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exp),
		sdkmetric.WithResource(c.res),
		sdkmetric.WithView(Views()...),
	)
	if c.spans != nil {
		e.TracerProvider = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(c.spans),
			sdktrace.WithResource(c.res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		)
	}
	if c.runtime {
		if err := StartRuntime(e.MeterProvider); err != nil {
			return nil, errors.Join(err, e.Shutdown(ctx))
		}
	}
	if c.global {
		otel.SetMeterProvider(e.MeterProvider)
		if e.TracerProvider != nil {
			otel.SetTracerProvider(e.TracerProvider)
		}
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{}, propagation.Baggage{}))
	}
	return e, nil
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format; mount it on /metrics.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Shutdown flushes and stops the providers. It is idempotent: later calls
// return the first call's result.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.shutdown.Do(func() {
		var errs []error
		errs = append(errs, e.MeterProvider.Shutdown(ctx))
		if e.TracerProvider != nil {
			errs = append(errs, e.TracerProvider.Shutdown(ctx))
		}
		e.shutdownErr = errors.Join(errs...)
	})
	return e.shutdownErr
}

// StartRuntime starts contrib's Go runtime metrics (go.memory.*,
// go.goroutine.count, go.processor.limit, go.config.gogc) and
// telemetry.StartProcess (process.cpu.time, process.memory.usage,
// go.gc.cycles) on mp. Call it once per MeterProvider. It lives here, not
// in telemetry, because contrib's runtime package imports the SDK.
func StartRuntime(mp metric.MeterProvider) error {
	return errors.Join(
		runtime.Start(runtime.WithMeterProvider(mp)),
		telemetry.StartProcess(telemetry.WithMeterProvider(mp)),
	)
}

// Views returns the histogram views Setup installs, for binaries that build
// their own MeterProvider: every servekit duration histogram (unit s) gets
// telemetry.DurationBuckets, so request, queue, run, inference and load
// times share bounds and can be compared bucket by bucket; the row and
// request counts of a batch get powers of two from 1 to 1024, the sizes a
// batcher is configured with.
func Views() []sdkmetric.View {
	pow2 := []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
	return []sdkmetric.View{
		sdkmetric.NewView(
			sdkmetric.Instrument{Name: "servekit.*", Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: telemetry.DurationBuckets()}},
		),
		sdkmetric.NewView(
			sdkmetric.Instrument{Name: "servekit.batch.size", Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: pow2}},
		),
		sdkmetric.NewView(
			sdkmetric.Instrument{Name: "servekit.batch.requests", Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: pow2}},
		),
	}
}

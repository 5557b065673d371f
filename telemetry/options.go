package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every metric and span this
// package records: its import path, as OpenTelemetry asks.
const ScopeName = "github.com/servekit/servekit/telemetry"

// Version is the instrumentation scope version.
const Version = "0.1.0"

// Option configures Middleware and StartRuntime.
type Option interface{ apply(*config) }

type config struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	// Resolved at construction, as otelhttp does: the globals are delegating
	// providers, so a provider installed later with otel.SetMeterProvider
	// still receives what is recorded here.
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return c
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMeterProvider records metrics through mp instead of
// otel.GetMeterProvider(). A nil mp keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	})
}

// WithTracerProvider starts spans from tp instead of
// otel.GetTracerProvider(). A nil tp keeps the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	})
}

// DurationBuckets returns the explicit histogram bounds, in seconds, of
// servekit.request.duration: 10µs to 10s in 1–2.5–5 steps (×2 or ×2.5), 19
// bounds. In-process inference spans that whole range: a cache hit takes
// microseconds, a tiny ONNX model ~5µs, a batched request waits up to its
// max delay (ms), a large model or an overloaded queue takes seconds. With
// ~2.5× steps histogram_quantile is off by at most one bucket's width, about
// ±40% in the worst case, which is enough to see a p99 spike. It returns a
// fresh slice each call; promexport applies the same bounds to every
// servekit.*.duration histogram.
func DurationBuckets() []float64 {
	return []float64{
		0.00001, 0.000025, 0.00005,
		0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005,
		0.01, 0.025, 0.05,
		0.1, 0.25, 0.5,
		1, 2.5, 5,
		10,
	}
}

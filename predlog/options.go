package predlog

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Defaults. See the package doc for why.
const (
	DefaultQueueSize = 4096
	// DefaultQueueBytes bounds what queued records hold: a few requests at
	// an HTTP server's largest body (16 MiB), a small share of a 1 GiB pod.
	DefaultQueueBytes   = 32 << 20
	DefaultMaxBatch     = 256
	DefaultWriteTimeout = 10 * time.Second
)

// Option configures a Logger.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	rate       float64
	errors     bool
	queue      int
	queueBytes int64
	maxBatch   int
	timeout    time.Duration
	tick       time.Duration
	meters     metric.MeterProvider
	onError    func(error)
	errs       []error // options out of range, reported by New
}

// require records an option error unless ok: the option sets its value
// anyway, since New then fails.
func (c *config) require(ok bool, format string, args ...any) {
	if !ok {
		c.errs = append(c.errs, fmt.Errorf(format, args...))
	}
}

func newConfig(opts []Option) config {
	c := config{rate: 1, errors: true, queue: DefaultQueueSize, queueBytes: DefaultQueueBytes, maxBatch: DefaultMaxBatch, timeout: DefaultWriteTimeout, tick: time.Second}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.meters == nil {
		c.meters = otel.GetMeterProvider()
	}
	return c
}

// WithSampleRate logs this share (0 to 1) of successful calls, drawn at
// random. Default 1: every call, as KServe's logger in mode "all".
func WithSampleRate(rate float64) Option {
	return optionFunc(func(c *config) {
		c.require(rate >= 0 && rate <= 1, "sample rate %v, want 0 to 1", rate) // NaN fails too
		c.rate = rate
	})
}

// WithErrors(false) samples failed calls at the sample rate too. Default
// true: every failed call is logged.
func WithErrors(always bool) Option { return optionFunc(func(c *config) { c.errors = always }) }

// WithQueueSize bounds the records waiting for the sink; past it records
// are dropped and counted. Default DefaultQueueSize.
func WithQueueSize(n int) Option {
	return optionFunc(func(c *config) { c.require(n >= 1, "queue size %d < 1", n); c.queue = n })
}

// WithQueueBytes bounds the bytes the records waiting for the sink hold
// (their tensors' data, names and strings, counted before they are
// copied); past it records are dropped and counted, so a flood of large
// requests to a slow sink costs at most n bytes. A record counts until
// the sink's Write of it returns. Default DefaultQueueBytes.
func WithQueueBytes(n int64) Option {
	return optionFunc(func(c *config) { c.require(n >= 1, "queue bytes %d < 1", n); c.queueBytes = n })
}

// WithMaxBatch bounds the records given to one Sink.Write. Default
// DefaultMaxBatch.
func WithMaxBatch(n int) Option {
	return optionFunc(func(c *config) { c.require(n >= 1, "max batch %d < 1", n); c.maxBatch = n })
}

// WithWriteTimeout bounds one Sink.Write. Default DefaultWriteTimeout.
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.require(d > 0, "write timeout %v <= 0", d); c.timeout = d })
}

// WithTick sets how often an idle logger calls Sink.Write with no records
// (so a file sink can rotate by age). Default one second.
func WithTick(d time.Duration) Option {
	return optionFunc(func(c *config) { c.require(d > 0, "tick %v <= 0", d); c.tick = d })
}

// WithErrorHandler is called, from the logger's goroutine, with each
// error a sink returns. Default: none (Stats and metrics count them).
func WithErrorHandler(f func(error)) Option { return optionFunc(func(c *config) { c.onError = f }) }

// WithMeterProvider sets where metrics go. Default: the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

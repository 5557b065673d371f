package limit

import (
	"fmt"
	"runtime"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a Limiter (see New).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxInFlight int
	maxQueue    int // -1: same as maxInFlight
	maxWait     time.Duration
	meters      metric.MeterProvider
	errs        []error
}

func defaults() config {
	return config{maxInFlight: runtime.GOMAXPROCS(0), maxQueue: -1}
}

func (c *config) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithMaxInFlight bounds the requests running in the wrapped Predictor at
// once (default runtime.GOMAXPROCS(0): one CPU-bound model run per core;
// more only share the cores and lengthen each run). With a batcher below,
// use at least its max batch rows times its run slots, plus as many again
// so the next batch can form while one runs.
func WithMaxInFlight(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.errorf("max in flight %d < 1", n)
			return
		}
		c.maxInFlight = n
	})
}

// WithMaxQueue bounds the requests waiting for a slot (default: the max in
// flight, so a queued request waits about one run). Zero turns the queue
// off: a request that finds every slot taken is rejected at once.
func WithMaxQueue(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.errorf("max queue %d < 0", n)
			return
		}
		c.maxQueue = n
	})
}

// WithMaxWait bounds the time a request may wait in the queue (default 0:
// no bound but its context). A request whose estimated wait is already
// longer is rejected at once.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.errorf("max wait %v < 0", d)
			return
		}
		c.maxWait = d
	})
}

// WithMeterProvider sets where metrics go (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

func newConfig(opts []Option) config {
	c := defaults()
	for _, o := range opts {
		o.apply(&c)
	}
	if c.maxQueue < 0 {
		c.maxQueue = c.maxInFlight
	}
	if c.meters == nil {
		c.meters = otel.GetMeterProvider()
	}
	return c
}

package rollout

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the metrics a Router records.
const ScopeName = "github.com/servekit/servekit/rollout"

// Version is the instrumentation scope version.
const Version = "0.1.0"

// DefaultStatsWindow is how far back the latency percentiles and windowed
// counts of Stats look: long enough for a p99 to rest on a few thousand
// requests at modest load, short enough that a regression shows within a
// minute.
const DefaultStatsWindow = time.Minute

// Option configures a Router.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	mp     metric.MeterProvider
	clock  Clock
	log    *slog.Logger
	window time.Duration
	errs   []error // options out of range, reported by New
}

func newConfig(opts []Option) config {
	c := config{clock: realClock{}, window: DefaultStatsWindow}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	// Resolved here, as otelhttp and the telemetry package do: the global
	// is a delegating provider, so one installed later still receives data.
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// WithMeterProvider records metrics through mp instead of
// otel.GetMeterProvider(). A nil mp keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	})
}

// WithClock makes the Router read time and set timers through c: plans
// hold and check on it, and stats windows rotate on it. Tests pass a clock
// they step by hand (rollouttest.Clock) so plans run without sleeping. A nil
// c keeps the real clock.
func WithClock(c Clock) Option {
	return optionFunc(func(cfg *config) {
		if c != nil {
			cfg.clock = c
		}
	})
}

// WithLogger sets where the Router logs what happens without a caller to
// tell: a plan advancing, rolling back (with the reason) or finishing, and
// a retired version that failed to close. Default slog.Default(). Changes
// made through methods (SetWeights, Switch, ...) are not logged here: their
// caller knows, and the admin API logs them with who asked.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.log = l
		}
	})
}

// WithStatsWindow sets how far back latency percentiles and windowed
// counts look (default DefaultStatsWindow). The window is kept as six
// slices, so it moves in steps of a sixth of d; New refuses a d below 6ms.
func WithStatsWindow(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < numSlots*time.Millisecond {
			c.errs = append(c.errs, fmt.Errorf("stats window %v < %v", d, numSlots*time.Millisecond))
			return
		}
		c.window = d
	})
}

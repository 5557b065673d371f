package drift

import (
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults of NewMonitor.
const (
	// DefaultQueue is how many observed requests wait for the worker before
	// more are dropped (and counted).
	DefaultQueue = 1024
	// DefaultExactLimit is the most values per feature a window keeps for
	// exact tests; bigger windows are compared through their histograms.
	DefaultExactLimit = 1000
	// DefaultMinSamples is the fewest values a feature needs in a window for
	// a verdict; below it no alarm is raised or cleared.
	DefaultMinSamples = 100
	// DefaultLargeSample is the sample size above which a feature is judged
	// by a distance rather than a test (Evidently's 1000).
	DefaultLargeSample = 1000
	// DefaultRaiseAfter and DefaultClearAfter are the consecutive windows
	// with and without drift that raise and clear a feature's alarm.
	DefaultRaiseAfter = 2
	DefaultClearAfter = 3
	// DefaultClearRatio: a feature counts towards clearing only when its
	// distance is below 0.8 × the threshold (or its p-value above the
	// threshold / 0.8), so a statistic hovering at the threshold does not
	// flap.
	DefaultClearRatio = 0.8
	// DefaultHistory is how many window results per model version the
	// monitor keeps for Results and the report; the alerts kept are as many.
	DefaultHistory = 100
)

// DefaultWindow is a tumbling window of 1000 rows.
var DefaultWindow = CountWindow(1000, 0)

// Option configures NewMonitor and Evaluate.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	eval                   evalConfig
	window                 WindowSpec
	queue                  int
	raiseAfter, clearAfter int
	history                int
	alerts                 []func(Alert)
	meters                 metric.MeterProvider
	profiles               []*Profile
	clock                  clock
	err                    error // the first invalid option
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		eval: evalConfig{
			exactLimit: DefaultExactLimit, minSamples: DefaultMinSamples, largeSample: DefaultLargeSample,
			thresholds: map[Statistic]float64{}, methods: map[string]Statistic{},
			correction: Bonferroni, clearRatio: DefaultClearRatio,
			tolerances: map[Check]float64{}, mvBand: DefaultMultivariateBand,
		},
		window: DefaultWindow, queue: DefaultQueue,
		raiseAfter: DefaultRaiseAfter, clearAfter: DefaultClearAfter,
		history: DefaultHistory, clock: realClock{},
	}
	for _, o := range opts {
		o.apply(c)
	}
	if c.err != nil {
		return nil, c.err
	}
	e := &c.eval
	switch {
	case c.queue < 1:
		return nil, invalid("queue %d, want at least 1", c.queue)
	case e.exactLimit < 0 || e.exactLimit > MaxValues:
		return nil, invalid("exact limit %d, want 0 to %d", e.exactLimit, MaxValues)
	case e.minSamples < 1:
		return nil, invalid("minimum sample size %d, want at least 1", e.minSamples)
	case e.largeSample < 0:
		return nil, invalid("large sample size %d is negative", e.largeSample)
	case c.raiseAfter < 1 || c.clearAfter < 1:
		return nil, invalid("hysteresis %d/%d windows, want at least 1 each", c.raiseAfter, c.clearAfter)
	case !(e.clearRatio > 0 && e.clearRatio <= 1):
		return nil, invalid("clear ratio %v, want (0, 1]", e.clearRatio)
	case c.history < 1:
		return nil, invalid("history %d, want at least 1", c.history)
	case e.correction != Bonferroni && e.correction != BenjaminiHochberg && e.correction != NoCorrection:
		return nil, invalid("unknown correction %q", e.correction)
	}
	if err := c.window.validate(); err != nil {
		return nil, err
	}
	if err := validChecks(e.tolerances); err != nil {
		return nil, err
	}
	if !(e.mvBand > 0) || math.IsInf(e.mvBand, 0) {
		return nil, invalid("multivariate band %v, want a positive number of standard errors", e.mvBand)
	}
	for s, t := range e.thresholds {
		if !s.valid() {
			return nil, invalid("threshold for unknown statistic %q", s)
		}
		if !(t > 0) || (s.Test() && t >= 1) {
			return nil, invalid("threshold %v for %s, want a p-value in (0, 1) or a positive distance", t, s)
		}
	}
	if e.method != "" && !e.method.valid() {
		return nil, invalid("unknown statistic %q", e.method)
	}
	for f, s := range e.methods {
		if !s.valid() {
			return nil, invalid("feature %q: unknown statistic %q", f, s)
		}
	}
	return c, nil
}

// WithWindow sets how traffic is cut into windows (default DefaultWindow).
func WithWindow(w WindowSpec) Option { return optionFunc(func(c *config) { c.window = w }) }

// WithQueue sets how many observed requests may wait for the worker
// (default DefaultQueue); when it is full, observations are dropped and
// counted, never waited for.
func WithQueue(n int) Option { return optionFunc(func(c *config) { c.queue = n }) }

// WithExactLimit sets the most values per feature a window keeps for exact
// tests (default DefaultExactLimit). It bounds memory: each numerical
// feature holds 8 bytes per kept value per pane.
func WithExactLimit(n int) Option { return optionFunc(func(c *config) { c.eval.exactLimit = n }) }

// WithMinSamples sets the fewest values a feature needs in a window for a
// verdict (default DefaultMinSamples).
func WithMinSamples(n int) Option {
	return optionFunc(func(c *config) { c.eval.minSamples = int64(n) })
}

// WithLargeSample sets the sample size above which features are judged by
// a distance instead of a test (default DefaultLargeSample): large samples
// make any test flag trivial shifts, so the verdict turns to effect size.
func WithLargeSample(n int) Option {
	return optionFunc(func(c *config) { c.eval.largeSample = int64(n) })
}

// WithThreshold sets a statistic's threshold: the significance level of a
// test (default DefaultAlpha) or the drift distance (default
// DefaultDistance).
func WithThreshold(s Statistic, v float64) Option {
	return optionFunc(func(c *config) { c.eval.thresholds[s] = v })
}

// WithStatistic makes s the deciding statistic of the named features, or of
// every feature for which s is computed when none are named, instead of
// the default choice by kind and sample size.
func WithStatistic(s Statistic, features ...string) Option {
	return optionFunc(func(c *config) {
		if len(features) == 0 {
			c.eval.method = s
		}
		for _, f := range features {
			c.eval.methods[f] = s
		}
	})
}

// WithCorrection sets how p-values are corrected across the features tested
// in one window (default Bonferroni).
func WithCorrection(k Correction) Option {
	return optionFunc(func(c *config) { c.eval.correction = k })
}

// WithHysteresis sets how many consecutive windows with drift raise a
// feature's alarm and how many without clear it (defaults
// DefaultRaiseAfter, DefaultClearAfter), and the clear ratio: a window
// counts towards clearing only when a distance is below ratio × threshold,
// or a p-value above threshold / ratio (default DefaultClearRatio; 1 makes
// one threshold serve both ways).
func WithHysteresis(raiseAfter, clearAfter int, clearRatio float64) Option {
	return optionFunc(func(c *config) {
		c.raiseAfter, c.clearAfter, c.eval.clearRatio = raiseAfter, clearAfter, clearRatio
	})
}

// WithAlertFunc adds a function called with every alert. It runs on the
// monitor's worker goroutine: it must return quickly and hand slow work
// on (a webhook.Sender's Send queues and returns). A panic in it is recovered
// and counted.
func WithAlertFunc(f func(Alert)) Option {
	return optionFunc(func(c *config) { c.alerts = append(c.alerts, f) })
}

// WithHistory sets how many window results per model version, and how many
// alerts, the monitor keeps (default DefaultHistory).
func WithHistory(n int) Option { return optionFunc(func(c *config) { c.history = n }) }

// WithMeterProvider records metrics with mp (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

// WithProfile monitors p's model version from the start (AddProfile).
func WithProfile(p *Profile) Option {
	return optionFunc(func(c *config) { c.profiles = append(c.profiles, p) })
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("drift: "+format, args...)
}

// clock is the monitor's time source; tests replace it to step time.
type clock interface {
	Now() time.Time
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

package rollout

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// Defaults of NewShadow.
const (
	// DefaultMirrorTimeout bounds one mirrored request. A challenger is an
	// in-process model: a second is far beyond a healthy answer, and short
	// enough that a hung challenger frees its slot soon.
	DefaultMirrorTimeout = time.Second
	// DefaultMirrorPercent mirrors every request: a shadow is usually
	// started to see the challenger on all the traffic, and drops itself
	// when the challenger cannot keep up.
	DefaultMirrorPercent = 100
	// DefaultMirrorQueue is how many mirrors may wait for a free runner:
	// enough to ride out a burst, few enough that the copies they hold
	// stay small.
	DefaultMirrorQueue = 64
)

// DefaultMaxMirrors is the default bound on concurrent mirrors:
// GOMAXPROCS, so the challenger can use at most as many goroutines as the
// machine has processors, and a slow one is shed instead of queued.
func DefaultMaxMirrors() int { return runtime.GOMAXPROCS(0) }

// ShadowOption configures NewShadow and Router.Mirror.
type ShadowOption interface{ applyShadow(*shadowConfig) }

type shadowOptionFunc func(*shadowConfig)

func (f shadowOptionFunc) applyShadow(c *shadowConfig) { f(c) }

type shadowConfig struct {
	percent     float64
	maxMirrors  int
	queue       int
	timeout     time.Duration
	rules       map[string]Comparison
	defaultRule Comparison
	challenger  string
	meters      metric.MeterProvider
	logger      *slog.Logger
}

// WithMirrorPercent mirrors p percent of requests, chosen at random (default
// DefaultMirrorPercent; 0 mirrors none; resolution 2⁻⁶⁴). Shadow.SetPercent
// changes it later.
func WithMirrorPercent(p float64) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.percent = p })
}

// WithMaxMirrors bounds the mirrors running at once, each a goroutine
// asking the challenger (default DefaultMaxMirrors()).
func WithMaxMirrors(n int) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.maxMirrors = n })
}

// WithMirrorQueue bounds the mirrors waiting for a running slot (default
// DefaultMirrorQueue; 0 is allowed). A sampled request that finds every
// slot running and the queue full is not mirrored, only counted as
// dropped: the primary never waits.
func WithMirrorQueue(n int) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.queue = n })
}

// WithMirrorTimeout bounds each mirrored request (default
// DefaultMirrorTimeout). An answer that comes later counts as timed out.
func WithMirrorTimeout(d time.Duration) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.timeout = d })
}

// WithComparison sets how the named output is compared; output "" sets the
// rule of every output not named (default Auto()).
func WithComparison(output string, cmp Comparison) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) {
		if output == "" {
			c.defaultRule = cmp
			return
		}
		if c.rules == nil {
			c.rules = make(map[string]Comparison)
		}
		c.rules[output] = cmp
	})
}

// WithChallengerVersion names the challenger in the snapshot and in the
// challenger_version metric attribute (default: the version in its
// metadata, else "challenger"). Router.Mirror sets it to the version.
func WithChallengerVersion(v string) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.challenger = v })
}

// WithShadowMeterProvider records the shadow's metrics with mp (default
// otel.GetMeterProvider()).
func WithShadowMeterProvider(mp metric.MeterProvider) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.meters = mp })
}

// WithShadowLogger logs the first challenger panic of the Shadow, with its
// stack, to l (default slog.Default()); later panics are only counted.
func WithShadowLogger(l *slog.Logger) ShadowOption {
	return shadowOptionFunc(func(c *shadowConfig) { c.logger = l })
}

func newShadowConfig(challenger serving.Predictor, opts []ShadowOption) (shadowConfig, error) {
	c := shadowConfig{percent: DefaultMirrorPercent, maxMirrors: DefaultMaxMirrors(), queue: DefaultMirrorQueue, timeout: DefaultMirrorTimeout}
	for _, o := range opts {
		o.applyShadow(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.challenger == "" {
		if md, ok := serving.MetadataOf(challenger); ok && md.Version != "" {
			c.challenger = md.Version
		} else {
			c.challenger = "challenger"
		}
	}
	switch {
	case !validPercent(c.percent):
		return c, fmt.Errorf("%w: mirror percent %v, want 0 to 100", errShadowConfig, c.percent)
	case c.maxMirrors <= 0:
		return c, fmt.Errorf("%w: max mirrors %d, want at least 1", errShadowConfig, c.maxMirrors)
	case c.queue < 0:
		return c, fmt.Errorf("%w: mirror queue %d, want 0 or more", errShadowConfig, c.queue)
	case c.timeout <= 0:
		return c, fmt.Errorf("%w: mirror timeout %v, want more than 0", errShadowConfig, c.timeout)
	case !c.defaultRule.valid():
		return c, fmt.Errorf("%w: comparison %v", errShadowConfig, c.defaultRule)
	}
	for name, r := range c.rules {
		if !r.valid() {
			return c, fmt.Errorf("%w: comparison %v of output %q", errShadowConfig, r, name)
		}
	}
	return c, nil
}

func validPercent(p float64) bool { return p >= 0 && p <= 100 && !math.IsNaN(p) }

// errShadowConfig is wrapped by the shadow's configuration errors, so they carry
// the InvalidArgument code (the admin API answers them with 400).
var errShadowConfig = serving.Errorf(serving.InvalidArgument, "rollout: invalid shadow")

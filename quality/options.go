package quality

import (
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults of NewMonitor.
const (
	// DefaultMemory is how many predictions per model the monitor remembers
	// for late labels; beyond it the oldest are forgotten (and counted).
	// Size it to the request rate times the label delay: 262,144 is an
	// hour at 73 predictions a second, about 30 MiB.
	DefaultMemory = 1 << 18
	// DefaultMaxAge is how long a prediction is remembered at most.
	DefaultMaxAge = 24 * time.Hour
	// DefaultLabelDelay is how long after a window ends its realized
	// metrics are judged: by then its labels are expected in.
	DefaultLabelDelay = time.Hour
	// DefaultMinSamples is the fewest predictions (for an estimate) or
	// labels (for a realized metric) a window needs to be judged.
	DefaultMinSamples = 100
	// DefaultRaiseAfter and DefaultClearAfter are the consecutive judged
	// windows that raise and clear an alarm.
	DefaultRaiseAfter = 2
	DefaultClearAfter = 3
	// DefaultChangeHold is how many labels a change detector's alarm is
	// held for after its last detection.
	DefaultChangeHold = 1000
	// DefaultQueue is how many observed predictions may wait for the
	// worker (about 1 MiB of buffer, twice: the worker swaps it out).
	DefaultQueue = 16384
	// DefaultHistory is how many windows per model version are kept.
	DefaultHistory = 100
	// DefaultRefresh is how often the worker refreshes the realized
	// metrics of windows that got labels, and checks time windows.
	DefaultRefresh = time.Second
	// DefaultBand is how many standard errors the sampling-error band
	// spans each side of an estimate, and the default alarm bound lies
	// from the reference: 3, as NannyML's.
	DefaultBand = 3
)

// DefaultAlarmMetrics are the metrics judged by default: the ones an
// operator watches, not every one reported.
var DefaultAlarmMetrics = []Metric{Accuracy, F1, AUC, LogLoss, MAE, RMSE}

// WindowSpec says how a model version's predictions are cut into
// windows: by count or by time, tumbling.
type WindowSpec struct {
	rows int64
	dur  time.Duration
}

// CountWindow cuts windows of n predictions.
func CountWindow(n int) WindowSpec { return WindowSpec{rows: int64(n)} }

// TimeWindow cuts windows of duration d, aligned to multiples of d from
// the monitor's start; a prediction belongs to the window in which the
// worker takes it in. A window with no prediction is not reported.
func TimeWindow(d time.Duration) WindowSpec { return WindowSpec{dur: d} }

func (w WindowSpec) String() string {
	if w.dur > 0 {
		return fmt.Sprintf("tumbling %v", w.dur)
	}
	return fmt.Sprintf("tumbling %d predictions", w.rows)
}

// Option configures NewMonitor.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	window                 WindowSpec
	memory                 int
	maxAge, labelDelay     time.Duration
	minSamples             int64
	raiseAfter, clearAfter int
	alarmMetrics           []Metric
	thresholds             map[Metric]float64
	band                   float64
	detectors              []Detector
	phDelta, phLambda      float64
	adwinDelta             float64
	changeHold             int64
	queue, history         int
	refresh                time.Duration
	alerts                 []func(Alert)
	meters                 metric.MeterProvider
	tasks                  map[string]Task
	refs                   []*Reference
	clock                  clock
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		window: CountWindow(1000), memory: DefaultMemory, maxAge: DefaultMaxAge, labelDelay: DefaultLabelDelay,
		minSamples: DefaultMinSamples, raiseAfter: DefaultRaiseAfter, clearAfter: DefaultClearAfter,
		alarmMetrics: DefaultAlarmMetrics, thresholds: map[Metric]float64{}, band: DefaultBand,
		detectors: []Detector{PageHinkley, ADWIN}, phDelta: DefaultPHDelta, phLambda: DefaultPHLambda,
		adwinDelta: DefaultADWINDelta, changeHold: DefaultChangeHold,
		queue: DefaultQueue, history: DefaultHistory, refresh: DefaultRefresh,
		tasks: map[string]Task{}, clock: realClock{},
	}
	for _, o := range opts {
		o.apply(c)
	}
	switch {
	case (c.window.rows > 0) == (c.window.dur > 0):
		return nil, invalid("window %v: set a count or a duration", c.window)
	case c.memory < 1:
		return nil, invalid("memory of %d predictions, want at least 1", c.memory)
	case c.maxAge <= 0 || c.labelDelay < 0 || c.refresh <= 0:
		return nil, invalid("max age %v, label delay %v, refresh %v: want positive durations", c.maxAge, c.labelDelay, c.refresh)
	case c.minSamples < 1:
		return nil, invalid("minimum sample %d, want at least 1", c.minSamples)
	case c.raiseAfter < 1 || c.clearAfter < 1:
		return nil, invalid("hysteresis %d/%d windows, want at least 1 each", c.raiseAfter, c.clearAfter)
	case !(c.band > 0) || math.IsInf(c.band, 0):
		return nil, invalid("band of %v standard errors, want a positive number", c.band)
	case c.queue < 1 || c.history < 1 || c.changeHold < 1:
		return nil, invalid("queue %d, history %d, change hold %d: want at least 1 each", c.queue, c.history, c.changeHold)
	case !(c.phDelta >= 0) || !(c.phLambda > 0) || !(c.adwinDelta > 0 && c.adwinDelta < 1):
		return nil, invalid("Page-Hinkley δ %v λ %v, ADWIN δ %v out of range", c.phDelta, c.phLambda, c.adwinDelta)
	}
	for _, m := range c.alarmMetrics {
		if !m.valid() {
			return nil, invalid("unknown metric %q", m)
		}
	}
	for m, v := range c.thresholds {
		if !m.valid() || !finite(v) {
			return nil, invalid("threshold %v for metric %q", v, m)
		}
	}
	for _, d := range c.detectors {
		if d != PageHinkley && d != ADWIN {
			return nil, invalid("unknown detector %q", d)
		}
	}
	for model, t := range c.tasks {
		if err := t.normalize(); err != nil {
			return nil, invalid("model %q: %v", model, err)
		}
		c.tasks[model] = t
	}
	return c, nil
}

// WithTask watches a model's predictions as task, also without a
// reference (realized metrics only). A reference names its model's task
// itself.
func WithTask(model string, t Task) Option {
	return optionFunc(func(c *config) { c.tasks[model] = t })
}

// WithReference judges the reference's model version against it from the
// start (AddReference).
func WithReference(r *Reference) Option {
	return optionFunc(func(c *config) { c.refs = append(c.refs, r) })
}

// WithWindow sets how predictions are cut into windows (default
// CountWindow(1000)).
func WithWindow(w WindowSpec) Option { return optionFunc(func(c *config) { c.window = w }) }

// WithMemory bounds what the monitor remembers for late labels, per
// model: at most n predictions (default DefaultMemory), each at most
// maxAge (default DefaultMaxAge). A prediction is forgotten when either is
// reached, oldest first, and counted (Stats.Evicted, Stats.Expired); a
// label for it then finds nothing (Stats.Unmatched). Each remembered
// prediction costs SlotBytes plus 8 per score (the model's output width)
// in the ring, and 40 to 70 bytes in the id index (a Go map, as it fills
// and doubles): 110 to 120 bytes in all for a binary task, measured
// (TestBytesPerPrediction): the default cap holds at most about 30 MiB
// per model, allocated as predictions arrive.
func WithMemory(n int, maxAge time.Duration) Option {
	return optionFunc(func(c *config) { c.memory, c.maxAge = n, maxAge })
}

// WithLabelDelay sets how long after a window ends its realized metrics
// become final and are judged (default DefaultLabelDelay): the time by
// which its labels are expected. A window whose remembered predictions are
// all labelled is judged at once. Until then its realized metrics are
// shown as they stand.
func WithLabelDelay(d time.Duration) Option { return optionFunc(func(c *config) { c.labelDelay = d }) }

// WithMinSamples sets the fewest predictions an estimate, and labels a
// realized metric, needs for a verdict (default DefaultMinSamples).
func WithMinSamples(n int) Option { return optionFunc(func(c *config) { c.minSamples = int64(n) }) }

// WithHysteresis sets how many consecutive judged windows with a breach
// raise a check's alarm and how many without clear it (defaults
// DefaultRaiseAfter, DefaultClearAfter).
func WithHysteresis(raiseAfter, clearAfter int) Option {
	return optionFunc(func(c *config) { c.raiseAfter, c.clearAfter = raiseAfter, clearAfter })
}

// WithAlarmMetrics sets which metrics are judged (default
// DefaultAlarmMetrics); every metric the task computes is reported.
func WithAlarmMetrics(ms ...Metric) Option {
	return optionFunc(func(c *config) { c.alarmMetrics = slices.Clone(ms) })
}

// WithThreshold judges metric m against a fixed bound instead of the
// reference's sampling band: the lowest acceptable value of a metric
// where higher is better, the highest of a loss or error. It adds m to
// the judged metrics.
func WithThreshold(m Metric, bound float64) Option {
	return optionFunc(func(c *config) {
		c.thresholds[m] = bound
		if !slices.Contains(c.alarmMetrics, m) {
			c.alarmMetrics = append(slices.Clone(c.alarmMetrics), m)
		}
	})
}

// WithBand sets how many standard errors the band around an estimate
// spans, and how far from the reference value a window's metric may fall
// before it breaches (default DefaultBand).
func WithBand(k float64) Option { return optionFunc(func(c *config) { c.band = k }) }

// WithDetectors sets the change detectors run on the label stream
// (default both); none turns them off.
func WithDetectors(ds ...Detector) Option {
	return optionFunc(func(c *config) { c.detectors = slices.Clone(ds) })
}

// WithPageHinkley tunes the Page–Hinkley detector: the tolerated rise δ
// and the detection threshold λ (defaults DefaultPHDelta, DefaultPHLambda).
func WithPageHinkley(delta, lambda float64) Option {
	return optionFunc(func(c *config) { c.phDelta, c.phLambda = delta, lambda })
}

// WithADWIN tunes ADWIN's confidence δ (default DefaultADWINDelta).
func WithADWIN(delta float64) Option { return optionFunc(func(c *config) { c.adwinDelta = delta }) }

// WithChangeHold sets how many labels a detector's alarm is held after
// its last detection (default DefaultChangeHold).
func WithChangeHold(labels int) Option {
	return optionFunc(func(c *config) { c.changeHold = int64(labels) })
}

// WithAlertFunc adds a function called with every alert, on the
// monitor's worker goroutine: it must return quickly (a webhook.Sender's Send
// queues and returns). A panic in it is recovered and counted.
func WithAlertFunc(f func(Alert)) Option {
	return optionFunc(func(c *config) { c.alerts = append(c.alerts, f) })
}

// WithQueue sets how many observed predictions may wait for the worker
// (default DefaultQueue); a request that does not fit is dropped and
// counted, never waited for.
func WithQueue(n int) Option { return optionFunc(func(c *config) { c.queue = n }) }

// WithHistory sets how many windows per model version the monitor keeps
// (default DefaultHistory), and how many alerts.
func WithHistory(n int) Option { return optionFunc(func(c *config) { c.history = n }) }

// WithRefresh sets how often windows that got labels are recomputed and
// time windows are closed (default DefaultRefresh).
func WithRefresh(d time.Duration) Option { return optionFunc(func(c *config) { c.refresh = d }) }

// WithMeterProvider records metrics with mp (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("quality: "+format, args...)
}

// clock is the monitor's time source; tests replace it.
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

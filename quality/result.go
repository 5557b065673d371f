package quality

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrDegraded is wrapped by Status.Err while a model version's quality
// alarm is raised.
var ErrDegraded = errors.New("quality: alarm raised")

// Window identifies the predictions a result covers and how many of them
// were labelled.
type Window struct {
	// Index counts the model version's windows, from 1.
	Index int64     `json:"index"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Predictions counts the answered rows; Invalid those whose score was
	// NaN or infinite (left out of every metric); Identified those with a
	// request id, which a label can reach; Labelled those whose label
	// arrived.
	Predictions int64 `json:"predictions"`
	Invalid     int64 `json:"invalid,omitempty"`
	Identified  int64 `json:"identified"`
	Labelled    int64 `json:"labelled"`
}

// Coverage is the share of the window's predictions that got a label.
func (w Window) Coverage() float64 {
	if w.Predictions == 0 {
		return 0
	}
	return float64(w.Labelled) / float64(w.Predictions)
}

// Delay is the distribution of label delays (label arrival less
// prediction) in a window, in seconds.
type Delay struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Band is an estimate with its sampling-error band: the realized value of
// a window is expected within [Lower, Upper] (about 99.7% of windows, for
// the default 3 standard errors) when the estimator's assumptions hold.
type Band struct {
	Value float64 `json:"value"`
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// MetricResult is one metric of a window: its reference value, its
// estimate without labels, its realized value from the labels so far, and
// the verdicts.
type MetricResult struct {
	Metric    Metric   `json:"metric"`
	Reference *float64 `json:"reference,omitempty"`
	Estimated *Band    `json:"estimated,omitempty"`
	Realized  *float64 `json:"realized,omitempty"`
	// Bound is what a judged value is held to for this window's size: the
	// lowest acceptable value of a metric where higher is better, the
	// highest of a loss. EstimatedBound for the estimate (n predictions),
	// RealizedBound for the realized value (its labelled predictions).
	EstimatedBound *float64 `json:"estimated_bound,omitempty"`
	RealizedBound  *float64 `json:"realized_bound,omitempty"`
	// EstimatedBreach and RealizedBreach say the value passed its bound.
	EstimatedBreach bool `json:"estimated_breach,omitempty"`
	RealizedBreach  bool `json:"realized_breach,omitempty"`
	// Divergent says the realized value lies outside the estimate's band
	// (taken at the labelled sample's size): the labels disagree with what
	// the scores promise, the sign of concept shift (P(y|x) changed),
	// which no estimate without labels can see.
	Divergent bool `json:"divergent,omitempty"`
}

// Result is one window of one model version.
type Result struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	Window  Window `json:"window"`
	// Settled says the realized values are final and were judged (see
	// WithLabelDelay); before, they stand for the labels so far.
	Settled bool           `json:"settled"`
	Delay   *Delay         `json:"delay,omitempty"`
	Metrics []MetricResult `json:"metrics"`
	// Alarmed lists the checks in alarm after this window.
	Alarmed []string `json:"alarmed,omitempty"`
}

// Metric returns the named metric's result.
func (r *Result) Metric(m Metric) (*MetricResult, bool) {
	for i := range r.Metrics {
		if r.Metrics[i].Metric == m {
			return &r.Metrics[i], true
		}
	}
	return nil, false
}

// AlertKind says whether an alert raises or clears alarms.
type AlertKind string

// The kinds of alerts.
const (
	AlertRaised  AlertKind = "raised"
	AlertCleared AlertKind = "cleared"
)

// Change is a change detector's finding on the label stream: the mean
// per-prediction error (misclassification rate, or scaled absolute error)
// rose from Before to After.
type Change struct {
	Detector Detector  `json:"detector"`
	Time     time.Time `json:"time"`
	// Labels is how many labels of the version the detectors had taken.
	Labels int64   `json:"labels"`
	Before float64 `json:"before"`
	After  float64 `json:"after"`
}

// Alert reports a change in a model version's quality alarms. A check is
// named "estimated <metric>", "realized <metric>", "invalid" (non-finite
// scores) or "change <detector>". Treat it as read-only.
type Alert struct {
	Kind    AlertKind `json:"kind"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	Raised  []string  `json:"raised,omitempty"`
	Cleared []string  `json:"cleared,omitempty"`
	Alarmed []string  `json:"alarmed,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	// Result is the window judged, when a window's verdict made the alert;
	// Change the detection, when a detector did.
	Result *Result `json:"result,omitempty"`
	Change *Change `json:"change,omitempty"`
}

// IdempotencyKey names the alert the same way on every attempt to deliver
// it: a webhook.Sender (the module's one alert path) sets it as the
// Idempotency-Key header, so a receiver can tell a retry from a new alert.
func (a Alert) IdempotencyKey() string {
	var window int64
	if a.Result != nil {
		window = a.Result.Window.Index
	}
	return "quality/" + a.Model + "/" + a.Version + "/" + strconv.FormatInt(window, 10) + "/" +
		strconv.FormatInt(a.Time.UnixNano(), 10) + "/" + string(a.Kind) + "/" + strings.Join(append(a.Raised, a.Cleared...), ",")
}

// Status is a model version's quality now: what a rollout guard asks.
type Status struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Monitored says the monitor watches the version's model; Estimating
	// that a reference lets it estimate without labels.
	Monitored  bool `json:"monitored"`
	Estimating bool `json:"estimating,omitempty"`
	// Alarmed says some check's alarm is raised; Alarms names them, Reason
	// says why, Since when the first was raised.
	Alarmed bool      `json:"alarmed"`
	Alarms  []string  `json:"alarms,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// Predictions and Labels count what the version answered and what
	// labels reached its remembered predictions, as of the last window
	// closed, labels taken or refresh (WithRefresh).
	Predictions int64 `json:"predictions"`
	Labels      int64 `json:"labels"`
	// Changes are the detectors' last findings, newest first.
	Changes []Change `json:"changes,omitempty"`
}

// Err is nil unless an alarm is raised; then it wraps ErrDegraded with
// the reason, so a rollout guard is one line:
//
//	rollout.GuardFunc(func(ctx context.Context, s rollout.Snapshot) error {
//		return qm.Status(s.Model, s.Canary.Version).Err()
//	})
func (s Status) Err() error {
	if !s.Alarmed {
		return nil
	}
	return fmt.Errorf("%w for %s: %s", ErrDegraded, modelVersion(s.Model, s.Version), s.Reason)
}

func fmtG(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// breachLine says in words why a metric breached.
func breachLine(which string, m *MetricResult) string {
	var v, b *float64
	if which == "estimated" {
		if m.Estimated != nil {
			v = &m.Estimated.Value
		}
		b = m.EstimatedBound
	} else {
		v, b = m.Realized, m.RealizedBound
	}
	if v == nil || b == nil {
		return which + " " + string(m.Metric)
	}
	op := " < "
	if m.Metric.LowerIsBetter() {
		op = " > "
	}
	return which + " " + string(m.Metric) + " " + fmtG(*v) + op + fmtG(*b)
}

func joinReasons(rs []string) string { return strings.Join(rs, "; ") }

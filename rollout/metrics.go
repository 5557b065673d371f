package rollout

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// Metric names a Router exports, all with attributes model and version.
const (
	MetricRequests  = "servekit.rollout.requests"  // counter: answered by a version, with attribute code
	MetricFallbacks = "servekit.rollout.fallbacks" // counter: routed to a version that was not ready, answered by another
	MetricInflight  = "servekit.rollout.inflight"  // updowncounter: inside a version now
	MetricWeight    = "servekit.rollout.weight"    // gauge: traffic weight in percent
	MetricLatency   = "servekit.rollout.latency"   // gauge: latency over the stats window, with attribute quantile (0.5, 0.99)
	MetricPlanStep  = "servekit.rollout.plan.step" // gauge: the active plan's step index (version = canary), with attribute state
)

// registerMetrics registers observable instruments read from the same
// counters as Status and guards, at collection: the request path records
// nothing through OpenTelemetry. Close unregisters them.
func (r *Router) registerMetrics() metric.Registration {
	m := r.cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	requests, err := m.Int64ObservableCounter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests a version answered, by outcome code."))
	note(err)
	fallbacks, err := m.Int64ObservableCounter(MetricFallbacks, metric.WithUnit("{request}"),
		metric.WithDescription("Requests routed to a version that was not ready and answered by another."))
	note(err)
	inflight, err := m.Int64ObservableUpDownCounter(MetricInflight, metric.WithUnit("{request}"),
		metric.WithDescription("Requests inside a version now."))
	note(err)
	weight, err := m.Float64ObservableGauge(MetricWeight, metric.WithUnit("%"),
		metric.WithDescription("Share of routed traffic assigned to a version."))
	note(err)
	latency, err := m.Float64ObservableGauge(MetricLatency, metric.WithUnit("s"),
		metric.WithDescription("Latency quantile of a version over the router's stats window."))
	note(err)
	step, err := m.Int64ObservableGauge(MetricPlanStep, metric.WithUnit("{step}"),
		metric.WithDescription("Index of the active rollout plan's step, for its canary version."))
	note(err)
	for _, err := range errs {
		// Instrumentation must never stop a model from serving.
		otel.Handle(err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t := r.tab.Load()
		now := r.cfg.clock.Now()
		for _, e := range t.entries {
			mv := []attribute.KeyValue{attribute.String("model", r.model), attribute.String("version", e.name)}
			set := metric.WithAttributes(mv...)
			st := e.stats.read(now, [numCodes]int64{})
			for c, n := range e.stats.counts() {
				if n > 0 {
					o.ObserveInt64(requests, n, metric.WithAttributes(append(mv, attribute.String("code", serving.Code(c).String()))...))
				}
			}
			o.ObserveInt64(fallbacks, e.stats.fallbacks.Load(), set)
			o.ObserveInt64(inflight, st.InFlight, set)
			o.ObserveFloat64(weight, percent(t.weights[e.name]), set)
			if st.WindowRequests > 0 {
				o.ObserveFloat64(latency, st.P50.Seconds(), metric.WithAttributes(append(mv, attribute.String("quantile", "0.5"))...))
				o.ObserveFloat64(latency, st.P99.Seconds(), metric.WithAttributes(append(mv, attribute.String("quantile", "0.99"))...))
			}
		}
		if p, ok := r.activePlan(); ok {
			o.ObserveInt64(step, int64(p.Step), metric.WithAttributes(
				attribute.String("model", r.model), attribute.String("version", p.Canary), attribute.String("state", string(p.State))))
		}
		return nil
	}, requests, fallbacks, inflight, weight, latency, step)
	if err != nil {
		otel.Handle(err)
		return nil
	}
	return reg
}

func (r *Router) activePlan() (PlanStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.plan == nil {
		return PlanStatus{}, false
	}
	return r.plan.status, true
}

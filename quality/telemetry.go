package quality

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the monitor's metrics.
const ScopeName = "github.com/servekit/servekit/quality"

// telemetry exports what the worker published as observable
// instruments: a collection reads it, so the request path records
// nothing.
type telemetry struct {
	reg metric.Registration
}

func newTelemetry(m *Monitor, mp metric.MeterProvider) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	mt := mp.Meter(ScopeName)
	var errs []error
	gauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := mt.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := mt.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	// The metrics' own values have no unit (a log loss, an MAE in the
	// target's unit), so none is given: the Prometheus names stay bare.
	est := gauge("servekit.quality.estimated", "", "A metric estimated without labels (CBPE) on the last closed window.")
	lower := gauge("servekit.quality.estimated_lower", "", "The lower edge of the estimate's sampling-error band.")
	upper := gauge("servekit.quality.estimated_upper", "", "The upper edge of the estimate's sampling-error band.")
	real := gauge("servekit.quality.realized", "", "A metric computed from the labels of the newest window with enough of them.")
	ref := gauge("servekit.quality.reference", "", "A metric on the labelled reference set.")
	coverage := gauge("servekit.quality.label_coverage", "1", "Share of the newest settled window's predictions that got a label.")
	delay := gauge("servekit.quality.label_delay", "s", "Label delay quantile (quantile 0.5, 0.9, 0.99) of the newest window with labels.")
	alarm := gauge("servekit.quality.alarm", "", "1 while a quality check's alarm is raised (only raised ones are reported).")
	predictions := counter("servekit.quality.predictions", "{prediction}", "Predictions observed for quality monitoring.")
	labels := counter("servekit.quality.labels", "{label}", "Labels received, by outcome: matched a remembered prediction or not.")
	forgotten := counter("servekit.quality.forgotten", "{prediction}", "Predictions forgotten before any label could reach them, by reason: evicted (memory cap) or expired (age).")
	dropped := counter("servekit.quality.dropped", "{request}", "Requests not observed because the monitor's queue was full.")
	changes := counter("servekit.quality.changes", "{change}", "Rises of the error rate the change detectors found, by detector.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	reg, err := mt.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(predictions, m.n.predictions.Load())
		o.ObserveInt64(labels, m.n.labels.Load(), metric.WithAttributes(attribute.String("outcome", "matched")))
		o.ObserveInt64(labels, m.n.unmatched.Load(), metric.WithAttributes(attribute.String("outcome", "unmatched")))
		o.ObserveInt64(forgotten, m.n.evicted.Load(), metric.WithAttributes(attribute.String("reason", "evicted")))
		o.ObserveInt64(forgotten, m.n.expired.Load(), metric.WithAttributes(attribute.String("reason", "expired")))
		o.ObserveInt64(dropped, m.n.dropped.Load())
		m.pub.mu.RLock()
		defer m.pub.mu.RUnlock()
		for k, v := range m.pub.byKey {
			mv := []attribute.KeyValue{attribute.String("model", k.Model), attribute.String("version", k.Version)}
			for _, c := range v.status.Alarms {
				o.ObserveFloat64(alarm, 1, metric.WithAttributes(append(mv[:2:2], attribute.String("check", c))...))
			}
			for d, n := range v.changes {
				o.ObserveInt64(changes, n, metric.WithAttributes(append(mv[:2:2], attribute.String("detector", string(d)))...))
			}
			if len(v.results) == 0 {
				continue
			}
			last := &v.results[len(v.results)-1]
			for i := range last.Metrics {
				mr := &last.Metrics[i]
				ma := metric.WithAttributes(append(mv[:2:2], attribute.String("metric", string(mr.Metric)))...)
				if mr.Estimated != nil {
					o.ObserveFloat64(est, mr.Estimated.Value, ma)
					o.ObserveFloat64(lower, mr.Estimated.Lower, ma)
					o.ObserveFloat64(upper, mr.Estimated.Upper, ma)
				}
				if mr.Reference != nil {
					o.ObserveFloat64(ref, *mr.Reference, ma)
				}
			}
			if r := newestLabelled(v.results, m.cfg.minSamples); r != nil {
				for i := range r.Metrics {
					if mr := &r.Metrics[i]; mr.Realized != nil {
						o.ObserveFloat64(real, *mr.Realized, metric.WithAttributes(append(mv[:2:2], attribute.String("metric", string(mr.Metric)))...))
					}
				}
				if d := r.Delay; d != nil {
					for _, q := range []struct {
						name string
						v    float64
					}{{"0.5", d.P50}, {"0.9", d.P90}, {"0.99", d.P99}} {
						o.ObserveFloat64(delay, q.v, metric.WithAttributes(append(mv[:2:2], attribute.String("quantile", q.name))...))
					}
				}
			}
			for i := len(v.results) - 1; i >= 0; i-- {
				if v.results[i].Settled {
					o.ObserveFloat64(coverage, v.results[i].Window.Coverage(), metric.WithAttributes(mv...))
					break
				}
			}
		}
		return nil
	}, est, lower, upper, real, ref, coverage, delay, alarm, predictions, labels, forgotten, dropped, changes)
	if err != nil {
		return nil, err
	}
	return &telemetry{reg: reg}, nil
}

// newestLabelled is the newest window with at least min labels.
func newestLabelled(rs []Result, min int64) *Result {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Window.Labelled >= min {
			return &rs[i]
		}
	}
	return nil
}

func (t *telemetry) close() error { return t.reg.Unregister() }

package drift

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the monitor's metrics.
const ScopeName = "github.com/servekit/servekit/drift"

// telemetry exports the latest window of every model version as gauges.
// Every instrument is observable: a collection reads what the worker
// published, so recording costs the request path nothing.
type telemetry struct {
	reg metric.Registration
}

func newTelemetry(m *Monitor, mp metric.MeterProvider) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	mt := mp.Meter(ScopeName)
	stat, err := mt.Float64ObservableGauge("servekit.drift.statistic",
		metric.WithDescription("A feature's drift statistic in the last window: a distance, or a test's statistic."))
	if err != nil {
		return nil, err
	}
	pval, err := mt.Float64ObservableGauge("servekit.drift.p_value",
		metric.WithDescription("A drift test's p-value in the last window, before correction across features."))
	if err != nil {
		return nil, err
	}
	alarm, err := mt.Int64ObservableGauge("servekit.drift.alarm",
		metric.WithDescription("1 while a feature's drift alarm is raised, else 0."))
	if err != nil {
		return nil, err
	}
	windows, err := mt.Int64ObservableCounter("servekit.drift.windows", metric.WithUnit("{window}"),
		metric.WithDescription("Windows evaluated."))
	if err != nil {
		return nil, err
	}
	rows, err := mt.Int64ObservableCounter("servekit.drift.rows", metric.WithUnit("{row}"),
		metric.WithDescription("Rows observed by the drift monitor."))
	if err != nil {
		return nil, err
	}
	dropped, err := mt.Int64ObservableCounter("servekit.drift.dropped", metric.WithUnit("{request}"),
		metric.WithDescription("Requests not observed because the monitor's queue was full."))
	if err != nil {
		return nil, err
	}
	dq, err := mt.Float64ObservableGauge("servekit.drift.data_quality",
		metric.WithDescription("A feature's data-quality share in the last window (check: missing, mismatched, out_of_range, unseen)."))
	if err != nil {
		return nil, err
	}
	mvErr, err := mt.Float64ObservableGauge("servekit.drift.multivariate_error",
		metric.WithDescription("Mean PCA reconstruction error of the last window's rows (multivariate drift)."))
	if err != nil {
		return nil, err
	}
	mvUpper, err := mt.Float64ObservableGauge("servekit.drift.multivariate_upper",
		metric.WithDescription("Upper edge of the reconstruction error's band for the last window's size."))
	if err != nil {
		return nil, err
	}
	checkAlarm, err := mt.Int64ObservableGauge("servekit.drift.check_alarm",
		metric.WithDescription("1 while a data-quality check's alarm (check \"<feature>: <check>\") or the multivariate one is raised."))
	if err != nil {
		return nil, err
	}
	reg, err := mt.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(rows, m.n.rows.Load())
		o.ObserveInt64(dropped, m.n.dropped.Load())
		m.pub.mu.RLock()
		defer m.pub.mu.RUnlock()
		for k, h := range m.pub.byKey {
			if len(h.results) == 0 {
				continue
			}
			mv := []attribute.KeyValue{attribute.String("model", k.Model), attribute.String("version", k.Version)}
			last := &h.results[len(h.results)-1]
			o.ObserveInt64(windows, last.Window.Index, metric.WithAttributes(mv...))
			if m := last.Multivariate; m != nil && !m.Insufficient {
				o.ObserveFloat64(mvErr, m.Error, metric.WithAttributes(mv...))
				o.ObserveFloat64(mvUpper, m.Upper, metric.WithAttributes(mv...))
			}
			// Every check judged in the window, 0 or 1, so a dashboard sees
			// the checks before any of them alarms.
			alarmed := map[string]bool{}
			for _, c := range last.Checks {
				alarmed[c] = true
			}
			check := func(name string) {
				var v int64
				if alarmed[name] {
					v = 1
				}
				o.ObserveInt64(checkAlarm, v, metric.WithAttributes(append(mv[:2:2], attribute.String("check", name))...))
			}
			for i := range last.Features {
				if q := last.Features[i].Quality; q != nil {
					for _, r := range q.Checks {
						check(checkName(last.Features[i].Name, r.Check))
					}
				}
			}
			if last.Multivariate != nil {
				check(CheckMultivariate)
			}
			for i := range last.Features {
				f := &last.Features[i]
				fa := append(mv[:2:2], attribute.String("feature", f.Name))
				var a int64
				if f.Alarmed {
					a = 1
				}
				o.ObserveInt64(alarm, a, metric.WithAttributes(fa...))
				if q := f.Quality; q != nil {
					for _, r := range q.Checks {
						o.ObserveFloat64(dq, r.Rate, metric.WithAttributes(append(fa[:3:3], attribute.String("check", string(r.Check)))...))
					}
				}
				for _, v := range f.Statistics {
					sa := metric.WithAttributes(append(fa[:3:3], attribute.String("statistic", string(v.Statistic)))...)
					o.ObserveFloat64(stat, v.Value, sa)
					if v.Statistic.Test() {
						o.ObserveFloat64(pval, v.PValue, sa)
					}
				}
			}
		}
		return nil
	}, stat, pval, alarm, windows, rows, dropped, dq, mvErr, mvUpper, checkAlarm)
	if err != nil {
		return nil, err
	}
	return &telemetry{reg: reg}, nil
}

func (t *telemetry) close() error { return t.reg.Unregister() }

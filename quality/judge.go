package quality

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// evaluate computes a window's result from the predictions of it still
// remembered: the estimate (when closing, with a reference) and the
// realized metrics over those labelled.
func (w *worker) evaluate(tr *tracker, win *window, closing bool) {
	r := tr.ms.ring
	wd := r.width
	// The worker's scratch slices, reused window after window.
	all, scores, labels, delays := w.scratch[0][:0], w.scratch[1][:0], w.scratch[2][:0], w.scratch[3][:0]
	defer func() { w.scratch = [4][]float64{all, scores, labels, delays} }()
	if win.first != 0 {
		for seq := max(win.first, r.head); seq <= win.last && r.has(seq); seq++ {
			s, sc := r.at(seq)
			if s.ver != tr.id || s.win != uint32(win.Index) {
				continue
			}
			if closing {
				all = append(all, sc...)
			}
			if s.lt != 0 {
				scores = append(scores, sc...)
				labels = append(labels, s.label)
				delays = append(delays, float64(s.lt-s.at)/1e9)
			}
		}
	}
	if closing && tr.ref != nil {
		win.est, win.estCounts = estimate(&tr.ref.Task, tr.ref.Calibrators, all)
		win.estN = int64(len(all) / wd)
	}
	win.dirty, win.computed = false, win.Labelled
	task := &tr.ms.plan.task
	real := realized(task, scores, labels)
	nl := int64(len(labels))
	realCounts := windowCounts(task, scores, labels, nil)
	res := Result{Model: tr.key.Model, Version: tr.key.Version, Window: win.Window, Settled: win.settled}
	if len(delays) > 0 {
		slices.Sort(delays)
		mean, _ := meanStd(delays)
		res.Delay = &Delay{P50: quantile(delays, 0.5), P90: quantile(delays, 0.9), P99: quantile(delays, 0.99), Max: delays[len(delays)-1], Mean: mean}
	}
	for _, m := range task.metrics() {
		mr := MetricResult{Metric: m}
		var ref *ReferenceMetric
		if tr.ref != nil {
			if rm, ok := tr.ref.Metric(m); ok {
				ref = rm
				mr.Reference = ptr(rm.Value)
			}
		}
		if v, ok := win.est.get(m); ok {
			b := Band{Value: v, Lower: v, Upper: v}
			if ref != nil && ref.StdErr != nil {
				if se := ref.StdErr.window(win.estCounts); finite(se) {
					b.Lower, b.Upper = v-w.cfg.band*se, v+w.cfg.band*se
				}
			}
			mr.Estimated = &b
			mr.EstimatedBound = w.bound(m, ref, win.estN)
			if w.judged(m) && mr.EstimatedBound != nil && win.estN >= w.cfg.minSamples {
				mr.EstimatedBreach = breached(m, v, *mr.EstimatedBound)
			}
		}
		if v, ok := real.get(m); ok {
			mr.Realized = ptr(v)
			mr.RealizedBound = w.bound(m, ref, nl)
			if nl >= w.cfg.minSamples {
				if w.judged(m) && mr.RealizedBound != nil {
					mr.RealizedBreach = breached(m, v, *mr.RealizedBound)
				}
				if mr.Estimated != nil && ref != nil && ref.StdErr != nil {
					// The realized value covers the labelled predictions
					// only: its spread is that of nl rows.
					if se := ref.StdErr.window(realCounts); finite(se) {
						mr.Divergent = math.Abs(v-mr.Estimated.Value) > w.cfg.band*se
					}
				}
			}
		}
		if mr.Reference != nil || mr.Estimated != nil || mr.Realized != nil {
			res.Metrics = append(res.Metrics, mr)
		}
	}
	res.Alarmed = tr.alarmed()
	win.res = res
}

func ptr(v float64) *float64 { return &v }

func (w *worker) judged(m Metric) bool { return slices.Contains(w.cfg.alarmMetrics, m) }

// bound is what metric m is held to for n samples: the fixed threshold,
// or the reference value less (more, for a loss) band standard errors.
func (w *worker) bound(m Metric, ref *ReferenceMetric, n int64) *float64 {
	if t, ok := w.cfg.thresholds[m]; ok {
		return ptr(t)
	}
	if ref == nil || ref.StdErr == nil {
		return nil
	}
	se := ref.StdErr.at(n)
	if !finite(se) {
		return nil
	}
	if m.LowerIsBetter() {
		return ptr(ref.Value + w.cfg.band*se)
	}
	return ptr(ref.Value - w.cfg.band*se)
}

func breached(m Metric, v, bound float64) bool {
	if m.LowerIsBetter() {
		return v > bound
	}
	return v < bound
}

// verdict is one check's outcome in a window: breached, clean, or not
// judged (too few samples), which leaves its alarm as it is.
type verdict struct {
	check  string
	breach bool
	reason string
}

// judgeClosed judges a window as it closes: the estimates and the
// invalid scores.
func (w *worker) judgeClosed(tr *tracker, win *window) (raised, cleared, reasons []string) {
	var vs []verdict
	if win.Predictions > 0 {
		vs = append(vs, verdict{check: "invalid", breach: win.Invalid > 0,
			reason: "invalid: " + itoa(win.Invalid) + " of " + itoa(win.Predictions) + " scores NaN or infinite"})
	}
	if tr.ref != nil && win.estN >= w.cfg.minSamples {
		for i := range win.res.Metrics {
			mr := &win.res.Metrics[i]
			if mr.Estimated != nil && mr.EstimatedBound != nil && w.judged(mr.Metric) {
				vs = append(vs, verdict{check: "estimated " + string(mr.Metric), breach: mr.EstimatedBreach, reason: breachLine("estimated", mr)})
			}
		}
	}
	return w.apply(tr, vs, win.End)
}

// judgeSettled judges a window's final realized metrics, and whether they
// diverge from the estimates.
func (w *worker) judgeSettled(tr *tracker, win *window) (raised, cleared, reasons []string) {
	if win.Labelled < w.cfg.minSamples {
		return nil, nil, nil
	}
	var vs []verdict
	divergent := verdict{check: "divergence"}
	anyEstimate := false
	for i := range win.res.Metrics {
		mr := &win.res.Metrics[i]
		if !w.judged(mr.Metric) {
			continue
		}
		if mr.Realized != nil && mr.RealizedBound != nil {
			vs = append(vs, verdict{check: "realized " + string(mr.Metric), breach: mr.RealizedBreach, reason: breachLine("realized", mr)})
		}
		if mr.Realized != nil && mr.Estimated != nil {
			anyEstimate = true
			if mr.Divergent && !divergent.breach {
				divergent.breach = true
				divergent.reason = "divergence: realized " + string(mr.Metric) + " " + fmtG(*mr.Realized) +
					" outside the estimate " + fmtG(mr.Estimated.Value) + " ± its band (concept shift?)"
			}
		}
	}
	if anyEstimate {
		vs = append(vs, divergent)
	}
	return w.apply(tr, vs, win.End)
}

// apply runs each verdict through its check's hysteresis.
func (w *worker) apply(tr *tracker, vs []verdict, at time.Time) (raised, cleared, reasons []string) {
	for _, v := range vs {
		h := tr.hyst[v.check]
		if h == nil {
			h = &hysteresis{}
			tr.hyst[v.check] = h
		}
		switch {
		case !h.alarmed && v.breach:
			if h.up++; h.up >= w.cfg.raiseAfter {
				*h = hysteresis{alarmed: true, reason: v.reason, since: at}
				raised = append(raised, v.check)
				reasons = append(reasons, v.reason)
			}
		case !h.alarmed:
			h.up = 0
		case !v.breach:
			if h.down++; h.down >= w.cfg.clearAfter {
				*h = hysteresis{}
				cleared = append(cleared, v.check)
			}
		default:
			h.down = 0
			h.reason = v.reason
		}
	}
	return raised, cleared, reasons
}

// alarmed lists the checks in alarm, sorted.
func (tr *tracker) alarmed() []string {
	var out []string
	for c, h := range tr.hyst {
		if h.alarmed {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func (tr *tracker) reason() (string, time.Time) {
	var parts []string
	var since time.Time
	for _, c := range tr.alarmed() {
		h := tr.hyst[c]
		parts = append(parts, h.reason)
		if since.IsZero() || h.since.Before(since) {
			since = h.since
		}
	}
	return joinReasons(parts), since
}

// finish publishes a window's result and raises the alert its verdicts
// call for.
func (w *worker) finish(tr *tracker, win *window, raised, cleared, reasons []string, at time.Time) {
	win.res.Alarmed = tr.alarmed()
	w.m.pub.result(tr.key, win.res, w.cfg.history)
	w.publishStatus(tr)
	if len(raised) == 0 && len(cleared) == 0 {
		return
	}
	res := win.res
	w.alert(tr, raised, cleared, reasons, at, &res, nil)
}

func (w *worker) alert(tr *tracker, raised, cleared, reasons []string, at time.Time, res *Result, ch *Change) {
	kind := AlertCleared
	if len(raised) > 0 {
		kind = AlertRaised
	}
	a := Alert{
		Kind: kind, Model: tr.key.Model, Version: tr.key.Version, Time: at,
		Raised: raised, Cleared: cleared, Alarmed: tr.alarmed(), Reason: joinReasons(reasons),
		Result: res, Change: ch,
	}
	w.m.pub.alert(a, w.cfg.history)
	for _, f := range w.cfg.alerts {
		w.call(f, a)
	}
}

func (w *worker) call(f func(Alert), a Alert) {
	defer func() {
		if recover() != nil {
			w.m.n.panics.Add(1)
		}
	}()
	f(a)
}

// detect feeds a newly labelled prediction's error to the version's
// change detectors: 1 or 0 for a wrong or right class, the absolute error
// over the reference's MAE for regression.
func (w *worker) detect(tr *tracker, sc []float64, label float64, now time.Time) {
	if len(tr.dets) == 0 {
		return
	}
	task := &tr.ms.plan.task
	var e float64
	switch task.Kind {
	case Binary:
		e = b2f((sc[0] >= task.Threshold) != (label == 1))
	case Multiclass:
		e = b2f(argmax(sc) != int(label))
	default:
		e = math.Abs(sc[0] - label)
		if tr.ref != nil {
			if rm, ok := tr.ref.Metric(MAE); ok && rm.Value > 0 {
				e /= rm.Value
			}
		}
	}
	for i := range tr.dets {
		d := &tr.dets[i]
		var hit bool
		var before, after float64
		if d.ph != nil {
			hit, before, after = d.ph.add(e)
		} else {
			hit, before, after = d.ad.add(e)
			hit = hit && after > before // a fall of the error is good news
		}
		check := "change " + string(d.kind)
		if hit {
			d.quiet = 0
			ch := Change{Detector: d.kind, Time: now, Labels: tr.labels, Before: before, After: after}
			tr.changes = append(tr.changes, ch)
			tr.nChanges[d.kind]++
			if len(tr.changes) > w.cfg.history {
				tr.changes = tr.changes[1:]
			}
			h := tr.hyst[check]
			if h == nil || !h.alarmed {
				reason := check + ": error rate rose from " + fmtG(before) + " to " + fmtG(after) + " after " + itoa(tr.labels) + " labels"
				tr.hyst[check] = &hysteresis{alarmed: true, reason: reason, since: now}
				w.alert(tr, []string{check}, nil, []string{reason}, now, nil, &ch)
			}
			continue
		}
		if d.quiet++; d.quiet == w.cfg.changeHold {
			if h := tr.hyst[check]; h != nil && h.alarmed {
				*h = hysteresis{}
				w.alert(tr, nil, []string{check}, nil, now, nil, nil)
			}
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

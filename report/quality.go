package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/servekit/servekit/quality"
)

// The report's view model: numbers and chart geometry computed here, so
// the template only places escaped values.

// qualityPage is the model-quality part of the page.
type qualityPage struct {
	Stats    *quality.Stats
	Versions []qualityVersion
	Alerts   []qualityAlert
	More     int
}

type qualityVersion struct {
	Model, Version string
	Status         string // ok, alarm, insufficient
	StatusText     string
	Reason         string
	Estimating     bool
	Predictions    int64
	Labels         int64
	Charts         []metricChart
	Windows        []windowRow
	Metrics        []quality.Metric // the table's metric columns
	Changes        []string
}

type metricChart struct {
	Metric  string
	W, H    float64
	Band    string // polygon points: the estimate's band
	Est     string // polyline points: the estimate
	Dots    []dot  // realized values
	RefY    float64
	HasRef  bool
	BoundY  float64
	HasBnd  bool
	Labels  []label
	Caption string
}

type windowRow struct {
	Index    int64
	End      string
	Preds    int64
	Coverage string
	Delay    string
	Settled  bool
	Cells    []cellView
	Alarmed  string
}

type cellView struct {
	Est, Real string
	Class     string // "", "breach", "divergent"
}

type qualityAlert struct {
	Time, Model, Version, Kind, Checks, Reason string
}

const (
	chartH     = 150.0
	chartPad   = 46.0
	maxWindows = 30
)

// newQualityPage draws a quality monitor's report.
func newQualityPage(r quality.Report) qualityPage {
	s := qualityPage{Stats: r.Stats}
	for _, v := range r.Versions {
		s.Versions = append(s.Versions, qualityVersionOf(v, r.Metrics))
	}
	alerts := r.Alerts
	if len(alerts) > maxAlerts {
		s.More = len(alerts) - maxAlerts
		alerts = alerts[:maxAlerts]
	}
	for _, a := range alerts {
		checks := a.Raised
		if a.Kind == quality.AlertCleared {
			checks = a.Cleared
		}
		s.Alerts = append(s.Alerts, qualityAlert{
			Time: a.Time.UTC().Format("2006-01-02 15:04:05"), Model: a.Model, Version: a.Version,
			Kind: string(a.Kind), Checks: strings.Join(checks, ", "), Reason: a.Reason,
		})
	}
	return s
}

func qualityVersionOf(vr quality.VersionReport, metrics []quality.Metric) qualityVersion {
	st, rs := vr.Status, vr.Results // newest first
	v := qualityVersion{
		Model: vr.Model, Version: vr.Version, Estimating: st.Estimating,
		Predictions: st.Predictions, Labels: st.Labels, Reason: st.Reason,
		Status: "ok", StatusText: "ok",
	}
	switch {
	case st.Alarmed:
		v.Status, v.StatusText = "alarm", "alarm: "+strings.Join(st.Alarms, ", ")
	case len(rs) == 0:
		v.Status, v.StatusText = "insufficient", "no window yet"
	}
	for _, c := range st.Changes {
		v.Changes = append(v.Changes, fmt.Sprintf("%s at %s, after %d labels: error %s → %s",
			c.Detector, c.Time.UTC().Format("2006-01-02 15:04:05"), c.Labels, fmtNum(c.Before), fmtNum(c.After)))
	}
	if len(rs) > maxWindows {
		rs = rs[:maxWindows]
	}
	chrono := slices.Clone(rs)
	slices.Reverse(chrono)
	for _, metric := range metrics {
		if c, ok := chartOf(metric, chrono); ok {
			v.Charts = append(v.Charts, c)
			v.Metrics = append(v.Metrics, metric)
		}
	}
	for _, r := range rs {
		row := windowRow{
			Index: r.Window.Index, End: r.Window.End.UTC().Format("01-02 15:04:05"), Preds: r.Window.Predictions,
			Coverage: fmt.Sprintf("%.1f%%", 100*r.Window.Coverage()), Settled: r.Settled, Alarmed: strings.Join(r.Alarmed, ", "),
		}
		if d := r.Delay; d != nil {
			row.Delay = fmtDur(d.P50) + " / " + fmtDur(d.P90)
		}
		for _, metric := range v.Metrics {
			var c cellView
			if mr, ok := r.Metric(metric); ok {
				if mr.Estimated != nil {
					c.Est = fmtNum(mr.Estimated.Value)
				}
				if mr.Realized != nil {
					c.Real = fmtNum(*mr.Realized)
				}
				switch {
				case mr.Divergent:
					c.Class = "divergent"
				case mr.EstimatedBreach || mr.RealizedBreach:
					c.Class = "breach"
				}
			}
			row.Cells = append(row.Cells, c)
		}
		v.Windows = append(v.Windows, row)
	}
	return v
}

// chartOf draws a metric over the windows, oldest first: the estimate and
// its band, the realized values, the reference value and the bound.
func chartOf(metric quality.Metric, rs []quality.Result) (metricChart, bool) {
	c := metricChart{Metric: string(metric), W: chartW, H: chartH}
	lo, hi := math.Inf(1), math.Inf(-1)
	see := func(p *float64) {
		if p != nil {
			lo, hi = min(lo, *p), max(hi, *p)
		}
	}
	var any bool
	for i := range rs {
		mr, ok := rs[i].Metric(metric)
		if !ok {
			continue
		}
		any = true
		if mr.Estimated != nil {
			see(&mr.Estimated.Lower)
			see(&mr.Estimated.Upper)
		}
		see(mr.Realized)
		see(mr.Reference)
		see(mr.EstimatedBound)
		see(mr.RealizedBound)
	}
	if !any || math.IsInf(lo, 0) {
		return c, false
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	}
	span := hi - lo
	lo, hi = lo-0.05*span, hi+0.05*span
	plotH := chartH - 22
	sy := func(v float64) float64 { return 6 + (hi-v)/(hi-lo)*(plotH-6) }
	step := 0.0
	if len(rs) > 1 {
		step = (chartW - chartPad - 8) / float64(len(rs)-1)
	}
	sx := func(i int) float64 {
		if len(rs) == 1 {
			return chartPad + (chartW-chartPad)/2
		}
		return chartPad + float64(i)*step
	}
	var upper, lower, est []string
	var nEst, nReal int
	for i := range rs {
		mr, ok := rs[i].Metric(metric)
		if !ok {
			continue
		}
		x := sx(i)
		if e := mr.Estimated; e != nil {
			upper = append(upper, fmt.Sprintf("%.1f,%.1f", x, sy(e.Upper)))
			lower = append(lower, fmt.Sprintf("%.1f,%.1f", x, sy(e.Lower)))
			est = append(est, fmt.Sprintf("%.1f,%.1f", x, sy(e.Value)))
			nEst++
		}
		if mr.Realized != nil {
			class := "ok"
			switch {
			case mr.Divergent:
				class = "drift"
			case mr.RealizedBreach:
				class = "alarm"
			}
			title := fmt.Sprintf("window %d: realized %s", rs[i].Window.Index, fmtNum(*mr.Realized))
			if mr.Estimated != nil {
				title += fmt.Sprintf(", estimated %s [%s, %s]", fmtNum(mr.Estimated.Value), fmtNum(mr.Estimated.Lower), fmtNum(mr.Estimated.Upper))
			}
			c.Dots = append(c.Dots, dot{X: x, Y: sy(*mr.Realized), Class: class, Title: title})
			nReal++
		}
		if mr.Reference != nil {
			c.RefY, c.HasRef = sy(*mr.Reference), true
		}
		if b := mr.EstimatedBound; b != nil {
			c.BoundY, c.HasBnd = sy(*b), true
		} else if b := mr.RealizedBound; b != nil {
			c.BoundY, c.HasBnd = sy(*b), true
		}
	}
	// The band: the upper edge left to right, then the lower edge back.
	slices.Reverse(lower)
	c.Band = strings.Join(append(upper, lower...), " ")
	c.Est = strings.Join(est, " ")
	c.Labels = []label{
		{X: chartPad - 4, Y: sy(hi-0.05*span/1.1) + 4, Text: fmtNum(hi - 0.05*span/1.1), Anchor: "end"},
		{X: chartPad - 4, Y: sy(lo+0.05*span/1.1) + 4, Text: fmtNum(lo + 0.05*span/1.1), Anchor: "end"},
	}
	if len(rs) > 0 {
		c.Labels = append(c.Labels,
			label{X: sx(0), Y: chartH - 4, Text: "window " + strconv.FormatInt(rs[0].Window.Index, 10), Anchor: "start"},
			label{X: sx(len(rs) - 1), Y: chartH - 4, Text: strconv.FormatInt(rs[len(rs)-1].Window.Index, 10), Anchor: "end"})
	}
	c.Caption = fmt.Sprintf("%s over the last %d windows: estimated (line, band ± its sampling error) in %d, realized (dots) in %d; grey: reference; dashed: the bound",
		metric, len(rs), nEst, nReal)
	return c, true
}

func fmtDur(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

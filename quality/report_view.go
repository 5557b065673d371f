package quality

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The report's view model: numbers and chart geometry computed here, so
// the template only places escaped values.

type sectionView struct {
	Versions []versionView
	Alerts   []alertView
	More     int
}

type versionView struct {
	Model, Version string
	Status         string // ok, alarm, insufficient
	StatusText     string
	Reason         string
	Estimating     bool
	Predictions    int64
	Labels         int64
	Charts         []metricChart
	Windows        []windowRow
	Metrics        []Metric // the table's metric columns
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

type dot struct {
	X, Y  float64
	Class string
	Title string
}

type label struct {
	X, Y   float64
	Text   string
	Anchor string
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

type alertView struct {
	Time, Model, Version, Kind, Checks, Reason string
}

const (
	chartW     = 420.0
	chartH     = 150.0
	chartPad   = 46.0
	maxAlerts  = 50
	maxWindows = 30
)

func (m *Monitor) section() sectionView {
	var s sectionView
	for _, k := range m.pub.keys() {
		s.Versions = append(s.Versions, m.versionView(k))
	}
	alerts := m.Alerts()
	if len(alerts) > maxAlerts {
		s.More = len(alerts) - maxAlerts
		alerts = alerts[:maxAlerts]
	}
	for _, a := range alerts {
		checks := a.Raised
		if a.Kind == AlertCleared {
			checks = a.Cleared
		}
		s.Alerts = append(s.Alerts, alertView{
			Time: a.Time.UTC().Format("2006-01-02 15:04:05"), Model: a.Model, Version: a.Version,
			Kind: string(a.Kind), Checks: strings.Join(checks, ", "), Reason: a.Reason,
		})
	}
	return s
}

func (m *Monitor) versionView(k mvKey) versionView {
	st := m.Status(k.model, k.version)
	rs := m.Results(k.model, k.version) // newest first
	v := versionView{
		Model: k.model, Version: k.version, Estimating: st.Estimating,
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
	for _, metric := range m.cfg.alarmMetrics {
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
func chartOf(metric Metric, rs []Result) (metricChart, bool) {
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

// fmtNum shows a number in at most four significant digits.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e-3 && math.Abs(v) < 1e5:
		s := strconv.FormatFloat(v, 'f', max(0, 3-int(math.Floor(math.Log10(math.Abs(v))))), 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/servekit/servekit/drift"
)

// The report's view model: numbers and chart geometry computed here, so the
// template only places escaped values.

// driftPage is the drift part of the page.
type driftPage struct {
	Stats    *drift.Stats
	Alarmed  int
	Versions []driftVersion
	Alerts   []driftAlert
	More     int // alerts not shown
}

type driftVersion struct {
	Model, Version string
	Status         string
	StatusText     string
	Window         drift.Window
	Correction     drift.Correction
	Profile        string
	Reason         string
	Strip          []cell
	StripW         float64
	Features       []featureView
	Quality        []qualityRow
	MV             *mvView
}

// qualityRow is one feature's line of the data-quality table: a cell per
// check, in drift.Checks' order, empty where the check does not apply.
type qualityRow struct {
	Name   string
	Values int64
	Cells  []qualityCell
}

type qualityCell struct {
	Text, Class, Title string
}

// mvView is the multivariate check: the last window's verdict and the
// reconstruction error over recent windows against its band.
type mvView struct {
	Status  string
	Line    string
	Spark   spark
	BandLo  float64
	BandHi  float64
	HasBand bool
}

type cell struct {
	X     float64
	Class string
	Title string
}

type featureView struct {
	Name, Kind    string
	Method        string
	MethodTitle   string
	Status        string
	Value         string // the deciding statistic's value (D, chi-square or the distance)
	P             string // its p-value, for tests
	Score         string // what is compared with the threshold
	Threshold     string
	AdjP          string
	RefMean, Mean string
	Count         int64
	RefCount      int64
	Missing       string
	Exact         bool
	Stats         []statView
	Chart         chart
	Spark         spark
}

type statView struct {
	Name, Value, P, Bound string
	Deciding              bool
}

type rect struct {
	X, Y, W, H float64
	Title      string
}

type chart struct {
	Bars      bool // categories: horizontal bars; else densities
	W, H      float64
	Ref, Cur  []rect
	Labels    []label
	Base      float64
	Note      string
	CurClass  string
	LegendY   float64
	LegendRef string
	LegendCur string
}

type spark struct {
	W, H      float64
	Points    string
	Dots      []dot
	Threshold float64
	Caption   string
}

type driftAlert struct {
	Time, Kind, Model, Version, Features, Reason string
}

const (
	densityH    = 150.0
	sparkW      = 420.0
	sparkH      = 56.0
	maxBarRows  = 12
	maxStrip    = 60
	labelRunes  = 22
	stripCellW  = 13.0
	barRowH     = 20.0
	barLabelW   = 150.0
	chartBottom = 22.0
)

func newDriftPage(r drift.Report) driftPage {
	p := driftPage{Stats: r.Stats}
	for _, v := range r.Versions {
		vv := versionViewOf(v)
		if vv.Status == "alarm" {
			p.Alarmed++
		}
		p.Versions = append(p.Versions, vv)
	}
	for i, a := range r.Alerts {
		if i == maxAlerts {
			p.More = len(r.Alerts) - maxAlerts
			break
		}
		feats := append(slices.Clone(a.Raised), a.CheckRaised...)
		if a.Kind == drift.AlertCleared {
			feats = append(slices.Clone(a.Cleared), a.CheckCleared...)
		}
		p.Alerts = append(p.Alerts, driftAlert{
			Time: a.Time.UTC().Format("2006-01-02 15:04:05"), Kind: string(a.Kind),
			Model: a.Model, Version: versionLabel(a.Version), Features: strings.Join(feats, ", "), Reason: a.Reason,
		})
	}
	return p
}

func versionLabel(v string) string {
	if v == "" {
		return "(any)"
	}
	return v
}

func resultStatus(r *drift.Result) string {
	switch {
	case len(r.Alarmed) > 0 || len(r.Checks) > 0:
		return "alarm"
	case len(r.Drifted) > 0:
		return "drift"
	}
	for _, f := range r.Features {
		if f.Status != drift.StatusInsufficient {
			return "ok"
		}
	}
	return "insufficient"
}

var statusText = map[string]string{"alarm": "ALARM", "drift": "drift", "ok": "ok", "insufficient": "too few rows"}

func qualityRows(r *drift.Result) []qualityRow {
	var rows []qualityRow
	alarmed := map[string]bool{}
	for _, c := range r.Checks {
		alarmed[c] = true
	}
	for i := range r.Features {
		f := &r.Features[i]
		if f.Quality == nil {
			continue
		}
		q := f.Quality
		row := qualityRow{Name: f.Name, Values: q.Values}
		for _, c := range drift.Checks {
			rate, ok := q.Rate(c)
			if !ok {
				row.Cells = append(row.Cells, qualityCell{Text: "—", Title: "does not apply to this feature"})
				continue
			}
			cell := qualityCell{Text: fmt.Sprintf("%.2f%%", 100*rate.Rate),
				Title: fmt.Sprintf("%s: %.2f%% (reference %.2f%%, threshold %.2f%%)", c, 100*rate.Rate, 100*rate.RefRate, 100*rate.Threshold)}
			switch {
			case alarmed[checkName(f.Name, c)]:
				cell.Class = "alarm"
			case rate.Breach:
				cell.Class = "drift"
			}
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

// mvViewOf draws the multivariate check over the recent windows (hist,
// newest first): the mean reconstruction error, the band's edges dashed.
func mvViewOf(hist []drift.Result) *mvView {
	last := hist[0].Multivariate
	if last == nil {
		return nil
	}
	v := &mvView{Status: "ok"}
	switch {
	case last.Alarmed:
		v.Status = "alarm"
	case last.Drifted:
		v.Status = "drift"
	case last.Insufficient:
		v.Status = "insufficient"
	}
	v.Line = fmt.Sprintf("mean reconstruction error %s over %d rows; band [%s, %s] (reference %s)",
		fmtNum(last.Error), last.Rows, fmtNum(last.Lower), fmtNum(last.Upper), fmtNum(last.RefError))
	var pts []*drift.MultivariateResult
	var idx []int64
	for i := len(hist) - 1; i >= 0; i-- {
		if m := hist[i].Multivariate; m != nil && !m.Insufficient {
			pts = append(pts, m)
			idx = append(idx, hist[i].Window.Index)
		}
	}
	top := last.Upper * 1.5
	for _, m := range pts {
		top = max(top, m.Error*1.1, m.Upper)
	}
	if !(top > 0) {
		top = 1
	}
	sy := func(y float64) float64 { return sparkH - 4 - y/top*(sparkH-8) }
	s := spark{W: sparkW, H: sparkH, Threshold: sy(last.Upper)}
	step := 0.0
	if len(pts) > 1 {
		step = (sparkW - 8) / float64(len(pts)-1)
	}
	var b strings.Builder
	for i, m := range pts {
		x := 4 + float64(i)*step
		if len(pts) == 1 {
			x = sparkW / 2
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, sy(m.Error))
		class := "ok"
		switch {
		case m.Alarmed:
			class = "alarm"
		case m.Drifted:
			class = "drift"
		}
		s.Dots = append(s.Dots, dot{X: x, Y: sy(m.Error), Class: class,
			Title: fmt.Sprintf("window %d: reconstruction error %s, band [%s, %s]", idx[i], fmtNum(m.Error), fmtNum(m.Lower), fmtNum(m.Upper))})
	}
	s.Points = strings.TrimSpace(b.String())
	s.Caption = fmt.Sprintf("reconstruction error over the last %d windows; dashed: the band's upper edge for the last window", len(pts))
	v.Spark = s
	v.BandLo, v.BandHi, v.HasBand = sy(last.Lower), sy(last.Upper), true
	return v
}

func versionViewOf(v drift.VersionReport) driftVersion {
	vv := driftVersion{Model: v.Model, Version: versionLabel(v.Version), Status: "insufficient"}
	if len(v.Results) == 0 {
		vv.StatusText = "no window yet"
		return vv
	}
	last := &v.Results[0]
	vv.Status = resultStatus(last)
	vv.StatusText = statusText[vv.Status]
	vv.Window, vv.Correction, vv.Profile, vv.Reason = last.Window, last.Correction, last.Profile, last.Reason()
	hist := v.Results[:min(len(v.Results), maxStrip)]
	for i := range hist {
		r := &hist[len(hist)-1-i] // oldest first
		s := resultStatus(r)
		vv.Strip = append(vv.Strip, cell{
			X: float64(i) * stripCellW, Class: s,
			Title: fmt.Sprintf("window %d, %d rows, ending %s: %s", r.Window.Index, r.Window.Rows,
				r.Window.End.UTC().Format("15:04:05"), statusText[s]),
		})
	}
	vv.StripW = float64(len(hist)) * stripCellW
	for i := range last.Features {
		vv.Features = append(vv.Features, featureViewOf(&last.Features[i], hist))
	}
	vv.Quality = qualityRows(last)
	vv.MV = mvViewOf(hist)
	return vv
}

func featureViewOf(f *drift.FeatureResult, hist []drift.Result) featureView {
	fv := featureView{
		Name: f.Name, Kind: string(f.Kind), Method: string(f.Method), Status: string(f.Status),
		Count: f.Count, RefCount: f.RefCount, Exact: f.Exact,
		Value: "—", P: "—", Score: "—", Threshold: "—", AdjP: "—", RefMean: "—", Mean: "—",
	}
	if f.Discrete {
		fv.Kind = "numerical, discrete"
	}
	if f.Kind == drift.Numerical {
		fv.RefMean = fmtNum(f.RefMean)
		if f.Count > 0 {
			fv.Mean = fmtNum(f.Mean)
		}
	}
	fv.Missing = fmt.Sprintf("%s window, %s reference", share(f.Missing, f.Missing+f.Count), share(f.RefMissing, f.RefMissing+f.RefCount))
	if f.Method != "" {
		fv.Threshold = fmtNum(f.Threshold)
		v, _ := f.Value(f.Method)
		fv.Value = fmtNum(v.Value)
		if f.Method.Test() {
			fv.MethodTitle = "a test: drift when the p-value after correction is below the threshold"
			fv.P = fmtNum(v.PValue)
			fv.Score = "p " + fmtNum(v.PValue)
			if f.Status != drift.StatusInsufficient {
				fv.AdjP = fmtNum(f.AdjustedP)
				fv.Score = "adjusted p " + fv.AdjP
			}
		} else {
			fv.MethodTitle = "a distance: drift at or above the threshold"
			fv.Score = fmtNum(f.Score)
		}
	}
	for _, v := range f.Statistics {
		sv := statView{Name: string(v.Statistic), Value: fmtNum(v.Value), Deciding: v.Statistic == f.Method}
		if v.Statistic.Test() {
			sv.P = fmtNum(v.PValue)
		}
		if v.Bound > 0 {
			sv.Bound = "±" + fmtNum(v.Bound)
		}
		fv.Stats = append(fv.Stats, sv)
	}
	class := map[drift.FeatureStatus]string{drift.StatusAlarm: "alarm", drift.StatusDrift: "drift"}[f.Status]
	if class == "" {
		class = "ok"
	}
	if f.Kind == drift.Categorical || f.Discrete {
		fv.Chart = barChart(f.Bins, class)
	} else {
		fv.Chart = densityChart(f.Bins, class)
	}
	fv.Spark = sparkOf(f, hist)
	return fv
}

func share(n, total int64) string {
	if total == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

// densityChart draws each side's density over the bins: a bar of height
// share/width, so unequal bins (quantile bins) read correctly.
func densityChart(bins []drift.Bin, class string) chart {
	c := chart{W: chartW, H: densityH + chartBottom + 16, Base: densityH, CurClass: class,
		LegendY: densityH + chartBottom, LegendRef: "reference", LegendCur: "window"}
	if len(bins) == 0 {
		c.Note = "no values in this window"
		return c
	}
	lo, hi := bins[0].Lo, bins[len(bins)-1].Hi
	if !(hi > lo) {
		hi = lo + 1
	}
	const pad = 6.0
	sx := func(x float64) float64 { return pad + (x-lo)/(hi-lo)*(chartW-2*pad) }
	minW := (hi - lo) / float64(len(bins)) / 10 // zero-width bins still get a bar
	var top float64
	width := func(b drift.Bin) float64 { return max(b.Hi-b.Lo, minW) }
	for _, b := range bins {
		top = max(top, b.Ref/width(b), b.Cur/width(b))
	}
	if top == 0 {
		top = 1
	}
	for _, b := range bins {
		x0, x1 := sx(b.Lo), sx(b.Lo+width(b))
		w := max(x1-x0, 1)
		title := fmt.Sprintf("%s to %s: reference %.1f%%, window %.1f%%", fmtNum(b.Lo), fmtNum(b.Hi), 100*b.Ref, 100*b.Cur)
		hr := b.Ref / width(b) / top * (densityH - 8)
		hc := b.Cur / width(b) / top * (densityH - 8)
		c.Ref = append(c.Ref, rect{X: x0, Y: densityH - hr, W: w, H: hr, Title: title})
		c.Cur = append(c.Cur, rect{X: x0 + w*0.2, Y: densityH - hc, W: w * 0.6, H: hc, Title: title})
	}
	c.Labels = []label{
		{X: sx(lo), Y: densityH + 15, Text: fmtNum(lo), Anchor: "start"},
		{X: sx((lo + hi) / 2), Y: densityH + 15, Text: fmtNum((lo + hi) / 2), Anchor: "middle"},
		{X: sx(hi), Y: densityH + 15, Text: fmtNum(hi), Anchor: "end"},
	}
	return c
}

// barChart draws categories as pairs of horizontal bars (reference above,
// window below), the most frequent first.
func barChart(bins []drift.Bin, class string) chart {
	c := chart{Bars: true, W: chartW, CurClass: class, LegendRef: "reference", LegendCur: "window"}
	rows := bins
	if len(rows) > maxBarRows {
		rows = rows[:maxBarRows]
		c.Note = fmt.Sprintf("%d more categories not shown", len(bins)-maxBarRows)
	}
	var top float64
	for _, b := range rows {
		top = max(top, b.Ref, b.Cur)
	}
	if top == 0 {
		top = 1
	}
	avail := chartW - barLabelW - 48
	for i, b := range rows {
		y := float64(i) * barRowH
		title := fmt.Sprintf("%s: reference %.1f%%, window %.1f%%", b.Label, 100*b.Ref, 100*b.Cur)
		c.Ref = append(c.Ref, rect{X: barLabelW, Y: y + 3, W: max(b.Ref/top*avail, 0.5), H: 6, Title: title})
		c.Cur = append(c.Cur, rect{X: barLabelW, Y: y + 10, W: max(b.Cur/top*avail, 0.5), H: 7, Title: title})
		c.Labels = append(c.Labels,
			label{X: barLabelW - 6, Y: y + 13, Text: truncate(b.Label, labelRunes), Anchor: "end"},
			label{X: barLabelW + max(b.Cur/top*avail, 0.5) + 4, Y: y + 17, Text: fmt.Sprintf("%.1f%%", 100*b.Cur), Anchor: "start"})
	}
	c.H = float64(len(rows))*barRowH + 22
	c.LegendY = float64(len(rows))*barRowH + 8
	return c
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// sparkOf plots the deciding statistic over the recent windows against its
// threshold: distances as they are, p-values as -log10(p), so both rise
// with drift.
func sparkOf(f *drift.FeatureResult, hist []drift.Result) spark {
	s := spark{W: sparkW, H: sparkH}
	type pt struct {
		y      float64
		status drift.FeatureStatus
		index  int64
		raw    float64
	}
	var pts []pt
	test := f.Method.Test()
	tf := func(v float64) float64 {
		if test {
			return -math.Log10(max(v, 1e-16))
		}
		return v
	}
	for i := len(hist) - 1; i >= 0; i-- {
		r, ok := hist[i].Feature(f.Name)
		if !ok || r.Method == "" || r.Status == drift.StatusInsufficient || r.Method != f.Method {
			continue
		}
		v := r.Score
		if test {
			v = r.AdjustedP
		}
		pts = append(pts, pt{tf(v), r.Status, hist[i].Window.Index, v})
	}
	thr := tf(f.Threshold)
	top := thr * 2
	for _, p := range pts {
		top = max(top, p.y)
	}
	if top <= 0 {
		top = 1
	}
	sy := func(y float64) float64 { return sparkH - 4 - y/top*(sparkH-8) }
	s.Threshold = sy(thr)
	if test {
		s.Caption = fmt.Sprintf("%s: −log10 adjusted p over the last %d windows; dashed: threshold %s", f.Method, len(pts), fmtNum(f.Threshold))
	} else {
		s.Caption = fmt.Sprintf("%s over the last %d windows; dashed: threshold %s", f.Method, len(pts), fmtNum(f.Threshold))
	}
	step := 0.0
	if len(pts) > 1 {
		step = (sparkW - 8) / float64(len(pts)-1)
	}
	var b strings.Builder
	for i, p := range pts {
		x, y := 4+float64(i)*step, sy(p.y)
		if len(pts) == 1 {
			x = sparkW / 2
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		class := map[drift.FeatureStatus]string{drift.StatusAlarm: "alarm", drift.StatusDrift: "drift"}[p.status]
		if class == "" {
			class = "ok"
		}
		s.Dots = append(s.Dots, dot{X: x, Y: y, Class: class, Title: fmt.Sprintf("window %d: %s %s", p.index, f.Method, fmtNum(p.raw))})
	}
	s.Points = strings.TrimSpace(b.String())
	return s
}

// checkName is a data-quality check's name as drift lists it among a
// result's Checks: "<feature>: <check>".
func checkName(feature string, c drift.Check) string { return feature + ": " + string(c) }

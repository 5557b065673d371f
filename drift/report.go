package drift

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"
)

// Report is what the HTML report shows: each model version's recent
// windows and the newest alerts. A Monitor makes one of its state (Report);
// a process that evaluates merged snapshots can fill one itself.
type Report struct {
	Title     string
	Generated time.Time
	Versions  []VersionReport
	// Alerts, newest first.
	Alerts []Alert
	// Stats, when set, are shown in the header.
	Stats *Stats
	// Sections are drawn after the model versions, before the alerts:
	// trusted markup from other components (see ReportSection).
	Sections []template.HTML
}

// ReportSection is a part of the report that another component draws,
// such as package quality's model performance (quality.Monitor has this
// method). drift imports none of them: anything with the method will do.
// ReportHTML returns trusted markup — the component escapes what it shows
// and loads nothing — which may use the report's classes: section.version
// for a card, .vhead, .sub and .badge (ok, drift, alarm) for its head,
// .grid of .feature boxes, table.features with td.num, and the charts'
// svg classes (.thr, polyline, circle.ok/.drift/.alarm, text).
type ReportSection interface {
	ReportHTML() (template.HTML, error)
}

// VersionReport is one model version's results, newest first.
type VersionReport struct {
	Model, Version string
	Results        []Result
}

// Report snapshots the monitor's results and alerts for the HTML report.
func (m *Monitor) Report() Report {
	st := m.Stats()
	r := Report{Title: "Drift report", Generated: m.cfg.clock.Now(), Alerts: m.Alerts(), Stats: &st}
	for _, k := range m.pub.keys() {
		r.Versions = append(r.Versions, VersionReport{Model: k.model, Version: k.version, Results: m.Results(k.model, k.version)})
	}
	for _, s := range m.cfg.sections {
		h, err := safeSection(s)
		if err != nil {
			// The report still renders: the section says what went wrong.
			h = template.HTML(`<section class="version"><div class="note" style="padding:14px 18px">` +
				template.HTMLEscapeString(err.Error()) + `</div></section>`)
		}
		r.Sections = append(r.Sections, h)
	}
	return r
}

func safeSection(s ReportSection) (h template.HTML, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("drift: report section panicked: %v", p)
		}
	}()
	return s.ReportHTML()
}

//go:embed report.html.tmpl
var reportHTML string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":  fmtNum,
	"pct":  func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"f1":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(reportHTML))

// WriteHTML renders the report as one self-contained HTML page: inline CSS
// and SVG charts drawn here, no script, font or request to anywhere. Every
// name that comes from a profile or from traffic (models, features,
// categories) is escaped by html/template.
func (r Report) WriteHTML(w io.Writer) error {
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, newPage(r)); err != nil {
		return fmt.Errorf("drift: render report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteReportFile writes the monitor's report to path, replacing the file
// whole (through a temporary file renamed into place).
func (m *Monitor) WriteReportFile(path string) error {
	var buf bytes.Buffer
	if err := m.Report().WriteHTML(&buf); err != nil {
		return err
	}
	return writeFile(path, buf.Bytes())
}

// Handler serves the monitor's report page (GET and HEAD). The page loads
// nothing else, and its Content-Security-Policy says so.
func (m *Monitor) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			io.WriteString(w, `{"error":"drift report: method not allowed; use GET"}`)
			return
		}
		var buf bytes.Buffer
		if err := m.Report().WriteHTML(&buf); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"drift report: render failed"}`)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		w.Write(buf.Bytes())
	})
}

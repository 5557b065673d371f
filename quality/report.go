package quality

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"

	"github.com/servekit/servekit/internal/atomicfile"
)

//go:embed section.html.tmpl page.html.tmpl
var templates embed.FS

var reportTemplate = template.Must(template.New("").Funcs(template.FuncMap{
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).ParseFS(templates, "*.tmpl"))

// ReportHTML draws the monitor's part of a report: per model version the
// judged metrics over recent windows (the estimate and its band, the
// realized values, the reference and the bound), a table of the windows
// with their label coverage and delay, the change detections, and the
// alerts. It is trusted markup for an enclosing page: every name from a
// reference or from traffic is escaped, and it loads nothing. It uses the
// class names of package drift's report (section.version, .vhead, .grid,
// .feature, table.features, .badge) and brings the few of its own in a
// style element, so drift.WithReportSection can place it in the drift
// report as it is:
//
//	dm, _ := drift.NewMonitor(drift.WithReportSection(qm))
func (m *Monitor) ReportHTML() (template.HTML, error) {
	var b bytes.Buffer
	b.WriteString("<style>")
	if err := reportTemplate.ExecuteTemplate(&b, "qstyle", nil); err != nil {
		return "", fmt.Errorf("quality: render report: %w", err)
	}
	b.WriteString("</style>\n")
	if err := reportTemplate.ExecuteTemplate(&b, "section", m.section()); err != nil {
		return "", fmt.Errorf("quality: render report: %w", err)
	}
	return template.HTML(b.String()), nil //nolint:gosec // rendered by html/template above
}

// WriteHTML writes the monitor's report as a page of its own: the section
// ReportHTML draws, with the monitor's counters in the header.
func (m *Monitor) WriteHTML(w io.Writer) error {
	st := m.Stats()
	var b bytes.Buffer
	err := reportTemplate.ExecuteTemplate(&b, "page", struct {
		Generated string
		Stats     *Stats
		Section   sectionView
	}{m.cfg.clock.Now().UTC().Format("2006-01-02 15:04:05 UTC"), &st, m.section()})
	if err != nil {
		return fmt.Errorf("quality: render report: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// WriteReportFile writes the report page to path, replacing the file
// whole (internal/atomicfile).
func (m *Monitor) WriteReportFile(path string) error {
	var b bytes.Buffer
	if err := m.WriteHTML(&b); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b.Bytes()); err != nil {
		return fmt.Errorf("quality: write %s: %w", path, err)
	}
	return nil
}

// Handler serves the report page (GET, HEAD). The page loads nothing, and
// its Content-Security-Policy says so. Serve labels with LabelsHandler.
func (m *Monitor) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "quality: report: method not allowed; use GET")
			return
		}
		var b bytes.Buffer
		if err := m.WriteHTML(&b); err != nil {
			writeError(w, http.StatusInternalServerError, "quality: report: render failed")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		w.Write(b.Bytes())
	})
}

package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/quality"
)

// A Source is a part of the page: Drift, DriftResults or Quality. Each is
// read afresh every time the page is drawn.
type Source struct {
	drift   func() drift.Report
	quality func() quality.Report
}

// Drift draws a drift monitor's model versions, data quality, multivariate
// check and alerts.
func Drift(m *drift.Monitor) Source { return Source{drift: m.Report} }

// DriftResults draws drift results evaluated elsewhere, such as the merged
// snapshots of replicas (drift.MergeSnapshots, drift.Evaluate), as Drift
// draws a monitor's.
func DriftResults(r drift.Report) Source {
	return Source{drift: func() drift.Report { return r }}
}

// Quality draws a quality monitor's model performance: estimated and
// realized metrics per version, windows, change detections and alerts.
func Quality(m *quality.Monitor) Source { return Source{quality: m.Report} }

// page is what the template draws: the parts present, in the order drift
// versions, model quality, drift alerts.
type page struct {
	Title     string
	Generated time.Time
	Drift     *driftPage
	Quality   *qualityPage
}

func newPage(srcs []Source) page {
	var p page
	for _, s := range srcs {
		switch {
		case s.drift != nil && p.Drift == nil:
			r := s.drift()
			d := newDriftPage(r)
			p.Drift, p.Generated = &d, later(p.Generated, r.Generated)
		case s.quality != nil && p.Quality == nil:
			r := s.quality()
			q := newQualityPage(r)
			p.Quality, p.Generated = &q, later(p.Generated, r.Generated)
		}
	}
	switch {
	case p.Drift != nil && p.Quality != nil:
		p.Title = "Model monitoring report"
	case p.Quality != nil:
		p.Title = "Model quality report"
	default:
		p.Title = "Drift report"
	}
	if p.Generated.IsZero() {
		p.Generated = time.Now()
	}
	return p
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

//go:embed report.html.tmpl
var pageHTML string

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":  fmtNum,
	"pct":  func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"f1":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(pageHTML))

// WriteHTML draws the sources as one self-contained HTML page: inline CSS
// and SVG charts drawn here, no script, font or request to anywhere.
// Every name that comes from a profile, a reference or traffic (models,
// features, categories, checks) is escaped by html/template. A page has
// at most one part of each kind: a second Drift or Quality source is
// ignored.
func WriteHTML(w io.Writer, srcs ...Source) error {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, newPage(srcs)); err != nil {
		return fmt.Errorf("report: render: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteFile writes the page to path, replacing the file whole
// (internal/atomicfile: temp, fsync, rename).
func WriteFile(path string, srcs ...Source) error {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, srcs...); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

// Handler serves the page (GET and HEAD), drawn afresh at each request.
// The page loads nothing else, and its Content-Security-Policy says so.
// Other methods are answered 405 with a JSON error.
func Handler(srcs ...Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "report: method not allowed; use GET")
			return
		}
		var buf bytes.Buffer
		if err := WriteHTML(&buf, srcs...); err != nil {
			writeError(w, http.StatusInternalServerError, "report: render failed")
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

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

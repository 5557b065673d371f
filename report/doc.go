// Package report draws the model monitors — package drift's statistics
// and package quality's model performance — as one self-contained HTML
// page for people: per model version its status and recent windows, the
// data-quality table and multivariate check, per feature the reference and
// window distributions and the deciding statistic over recent windows; per
// judged metric the estimate with its band, the realized values, the
// reference and the bound; then the alerts, newest first.
//
// Reach for Handler, with a Source per monitor:
//
//	mux.Handle("GET /monitoring", report.Handler(report.Drift(mon), report.Quality(qm)))
//	report.WriteFile("monitoring.html", report.Drift(mon)) // or a file
//
// DriftResults draws results evaluated elsewhere, such as replicas'
// merged snapshots (drift.MergeSnapshots, drift.Evaluate).
//
// The page is drawn afresh at each request from the monitors' Report
// snapshots, which never wait for their workers. Charts are SVG computed
// here; the page has no script, loads nothing (its Content-Security-Policy
// says so), and every name from a profile, a reference or traffic is
// escaped by html/template. TestReportInChromium loads it in headless
// Chromium: no console error, no request elsewhere, every chart drawn.
//
// Why a package of its own: the statistics are drift's and quality's, the
// pixels are not. Before, drift drew its page and took quality's section
// as trusted markup through an interface; here one page, one stylesheet
// and one set of chart helpers serve both, and the monitors only publish
// data (drift.Report, quality.Report). It imports drift and quality, which
// import neither it nor each other.
package report

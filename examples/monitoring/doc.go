// Package monitoring holds servekit's monitoring assets — a Grafana
// dashboard (dashboard.json), Prometheus alerting rules (alerts.yml) and a
// scrape configuration (prometheus.yml); see README.md — and, in its tests,
// the check that keeps them true: every metric name the dashboard and the
// rules query must be exported by a running servekit serve (cmd/servekit) or,
// for the rollout, shadow, drift and prediction-logging series, by
// examples/closedloop during its story.
//
// There is no code to import here; the package exists so that `go test
// ./...` (and so `make test`) runs the check.
package monitoring

package main

import (
	"context"
	"net/http"

	"github.com/servekit/servekit/telemetry/promexport"
)

// setupMetrics installs servekit's OpenTelemetry wiring (an SDK
// MeterProvider read by the Prometheus exporter, the histogram views the
// dashboard expects, Go runtime and process metrics, the W3C trace-context
// propagator the HTTP handler extracts with) as the globals that every
// servekit package defaults to, and returns the /metrics handler. Each call
// gets a registry of its own, so run can be called more than once in a
// process (tests).
func setupMetrics() (http.Handler, func(context.Context) error, error) {
	exp, err := promexport.Setup(context.Background())
	if err != nil {
		return nil, nil, err
	}
	return exp.Handler(), exp.Shutdown, nil
}

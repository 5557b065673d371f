package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/servekit/servekit/telemetry"
)

// setupMetrics installs an OpenTelemetry MeterProvider that the Prometheus
// exporter reads, sets it as the global (servekit's packages default to it),
// starts Go runtime metrics, and returns the /metrics handler. A registry of
// its own, not Prometheus's global one, lets run be called more than once in
// a process (tests).
func setupMetrics() (http.Handler, func(context.Context) error, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(mp)
	if err := errors.Join(
		runtime.Start(runtime.WithMeterProvider(mp), runtime.WithMinimumReadMemStatsInterval(time.Second)),
		telemetry.StartProcess(telemetry.WithMeterProvider(mp)), // process CPU, RSS, GC cycles
	); err != nil {
		return nil, nil, errors.Join(err, mp.Shutdown(context.Background()))
	}
	shutdown := func(ctx context.Context) error {
		otel.SetMeterProvider(prev)
		return mp.Shutdown(ctx)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), shutdown, nil
}

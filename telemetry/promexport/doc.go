// Package promexport wires servekit's telemetry into a binary: an
// OpenTelemetry SDK MeterProvider read by the Prometheus exporter, servekit's
// histogram views, Go runtime and process metrics, the W3C trace-context
// propagator and, when given a span exporter, a TracerProvider.
//
// Reach for Setup first and mount Exporter.Handler on /metrics:
//
//	exp, err := promexport.Setup(ctx)
//	...
//	defer exp.Shutdown(context.Background())
//	mux.Handle("GET /metrics", exp.Handler())
//	p := serving.Chain(telemetry.Middleware(), c.Middleware(), batch.Middleware())(model) // c: a *cache.Cache
//
// # Design choices
//
// It is a separate package because it imports the SDK, the Prometheus
// client and contrib's runtime instrumentation; the libraries (telemetry,
// cache, batch, backend/onnx) depend on the OpenTelemetry API only, so an
// application that exports by OTLP, or not at all, does not link them.
//
// By default Setup installs its providers as otel's globals, since every
// servekit package defaults to the globals: one call instruments the whole
// stack. WithoutGlobal is for tests and for binaries that pass providers
// explicitly.
//
// The exporter keeps its default translation (exporters/prometheus v0.69):
// dots become underscores, the unit becomes a suffix (s → _seconds,
// By → _bytes) unless it is a {curly} annotation, counters end in _total,
// each series carries otel_scope_name/otel_scope_version labels, and the
// resource is the target_info series. examples/monitoring queries exactly
// those names and its test checks them against the running example.
//
// Exporter is safe for concurrent use; Shutdown is idempotent.
package promexport

// Package telemetry instruments servekit with OpenTelemetry: a request
// middleware that records a span and the request metrics, and the process
// metrics a dashboard needs next to them.
//
// Reach for Middleware first: put it outermost in the chain, so that it
// times and counts everything the caller sees (cache hits included) and its
// span servekit.predict is the parent of the spans the inner layers start
// from ctx (cache.lookup, batch.queue, batch.run, onnx.run):
//
//	p := serving.Chain(telemetry.Middleware(), c.Middleware(), batch.Middleware())(model) // c: a *cache.Cache
//
// It records, with attributes model, version and code (serving.Code.String(),
// "ok" on success):
//
//	servekit.requests           counter        {request}  answered requests by outcome
//	servekit.request.duration   histogram      s          time to answer, buckets of DurationBuckets
//	servekit.requests.inflight  updowncounter  {request}  requests being answered (no code)
//
// StartProcess adds process.cpu.time, process.memory.usage and go.gc.cycles;
// promexport.StartRuntime starts it together with contrib's Go runtime
// metrics.
//
// # Design choices
//
// The package depends on the OpenTelemetry API only (otel, otel/metric,
// otel/trace); the SDK, the Prometheus exporter and contrib's runtime
// instrumentation (which imports the SDK) live in the sub-package promexport,
// which binaries import and libraries need not. Providers default to the
// globals, resolved when Middleware is called; the globals delegate, so a
// provider set later still receives the data. Tests pass their own providers
// with WithMeterProvider and WithTracerProvider.
//
// The hot path does not build attributes: the options for every
// (model, version, code) are built once, on the first request of the pair,
// and kept in a copy-on-write map read without locks (sync.Map would box
// the struct key into an interface, an allocation per lookup). The map
// holds at most 2000 pairs (the SDK's default cardinality limit), since
// model names come from clients before any router has checked them; beyond
// that histogram sets are built per request and the pairs are counted in
// series marked otel.metric.overflow=true.
//
// A request costs one SDK measurement, the histogram's. servekit.requests
// and servekit.requests.inflight are observable instruments over atomics
// per pair, read at collection (which is all a scrape sees anyway): an
// SDK measurement resolves its options and walks the attribute set
// through reflection on every call, about 0.4 µs here, where an atomic add
// costs nanoseconds. The price is that the counter carries no exemplars;
// the histogram, which does, is where they are useful. A Code value that
// serving does not define is labelled code="unknown". The span is started
// with no options (its kind is the default, internal) and given attributes
// only when it records, so an unsampled request pays what the trace API
// itself requires: the sampler's decision, the span's ids and the context
// that carries it.
//
// Instrumentation never changes a result or an error: Predict returns
// exactly what the wrapped Predictor returned. A panic below is not
// recovered, but the span is ended and the request counted with code
// internal before it continues.
//
// Everything here is safe for concurrent use. Middleware's layer holds
// nothing of its own to release; its Close closes the Predictor it wraps,
// which it owns (the rule on serving.Middleware).
package telemetry

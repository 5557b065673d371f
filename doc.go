// Package servekit serves ML models inside a Go process: load an ONNX model,
// call Predict, and serve it over the Open Inference Protocol (REST and gRPC)
// with batching, caching, rollouts, drift monitoring and batch jobs, without
// running a separate model server.
//
// This package holds only this overview; the code lives in its sub-packages,
// so a service takes exactly the pieces it needs. Middleware packages import
// only serving, never each other:
//
//   - serving: the vocabulary. Tensor, Request, Response, the Predictor
//     interface, Middleware and Chain, the error type with its codes.
//     Start here.
//   - serving/servingtest: fakes for your unit tests and the conformance
//     check every Predictor passes.
//   - backend/onnx: a Predictor over ONNX Runtime 1.29, CPU or CUDA.
//   - serving/oip: the Open Inference Protocol's transport-neutral core: the
//     model table, the infer steps, Triton's model configuration, statistics
//     and repository extensions; serving/oip/oipjson, its JSON codec.
//   - serving/httpapi: an http.Handler for the Open Inference Protocol V2
//     (KServe, Triton clients), plus V1 / Vertex AI and SageMaker adapters.
//   - serving/grpcapi: the same protocol's gRPC service as an http.Handler,
//     on the REST port, serving the same oip.Server.
//   - serving/remote: a model on any V2 server (Triton, KServe, another
//     servekit) as a Predictor, over REST or gRPC, so routers, shadows,
//     caches, batchers and batch jobs work across the network.
//   - limit: admission control (max in flight, a short queue, 429 with
//     Retry-After), so an overloaded model sheds load at its normal latency.
//   - batch: dynamic micro-batching middleware.
//   - cache: response cache middleware (sharded LRU, single-flight, Redis L2).
//   - telemetry: OpenTelemetry metrics and traces for the request path.
//   - rollout: one model's versions behind a router: hot replace, sticky
//     canary weights, blue-green switch and rollback, guarded staged plans,
//     shadow mirroring with in-band comparison; admin: its HTTP API
//     (status, plans, rollback) behind an authoriser.
//   - repository: a model repository on disk (Triton's layout) with version
//     policies, warm-up, hot reload and explicit load/unload, one rollout
//     router per model, served on an oip.Server; it imports serving, rollout
//     and serving/oip (no transport) and loads through a
//     function you give it, so it works with any backend.
//   - drift: drift monitoring middleware: reference profiles, windowed
//     statistics, data-quality checks, multivariate drift, alerts; webhook:
//     the signed alert sender (a retraining trigger); report: the
//     monitors' HTML page (drift and quality).
//   - quality: model quality monitoring middleware: predictions remembered
//     by request id, late labels joined (Go, POST …/labels, files),
//     realized metrics per window and version, estimates without labels
//     (CBPE), change detectors on the errors, a canary compared with the
//     stable on labelled traffic (rollout.MinQuality).
//   - predlog: prediction logging (sampled, asynchronous) to rotating files
//     or CloudEvents; rowio: rows ↔ requests in JSONL, CSV and Parquet;
//     batch/job: resumable offline scoring. The nested module
//     github.com/servekit/servekit/beam scores on Apache Beam.
//
// A request flows from the transport through middleware to the model:
//
//	REST or gRPC (OIP V2, V1, SageMaker) or a Go call
//	  → telemetry → drift → rollout router (shadow copy to a challenger)
//	      → per version: quality → cache → limit → batch → backend/onnx
//
// Every stage is a serving.Middleware (func(Predictor) Predictor) or a
// Predictor holding Predictors (the router), and serving.Chain composes
// middleware, first outermost:
//
//	model, err := onnx.Load("fraud.onnx")
//	...
//	c, err := cache.New(cache.WithMaxEntries(100_000))
//	...
//	defer c.Close() // last: the cache is shared, so the chain leaves it open
//	p := serving.Chain(telemetry.Middleware(), c.Middleware(), batch.Middleware())(model)
//	defer serving.Close(p) // every layer, then the model: each owns what it wraps
//
// The package Example runs this chain on a fake model. serving's package
// doc has the rule every middleware follows: which are built with New(next)
// and which are shared values, what Close closes, how options fail.
//
// cmd/servekit is the server command (servekit serve). The examples folder
// holds runnable binaries: examples/predict (load and score),
// examples/realtime (servekit embedded in a server of your own, in one
// file), examples/rollout (mirror → canary → switch → rollback),
// examples/hybrid (a canary from a version on a remote V2 server to the
// same model in process, and a remote challenger shadowed in band),
// examples/drift (drift detected, retraining webhook called, report
// written), examples/batchjob (1M rows into Parquet) and examples/closedloop
// (all of it composed: nightly scoring, serving, drift-triggered
// retraining, late labels, and a canary promoted by guards that include
// its AUC against the stable's on labelled traffic).
package servekit

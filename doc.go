// Package servekit serves ML models inside a Go process: load an ONNX model,
// call Predict, and serve it over HTTP with the Open Inference Protocol —
// without running a separate model server.
//
// This package holds only this overview; the code lives in its sub-packages,
// each importing only serving, so a service takes exactly the pieces it needs:
//
//   - serving: the vocabulary. Tensor, Request, Response, the Predictor
//     interface, Middleware and Chain, the error type with its codes.
//     Start here.
//   - serving/servingtest: fakes for your unit tests and the conformance
//     check every Predictor passes.
//   - backend/onnx: a Predictor over ONNX Runtime 1.29, CPU or CUDA.
//   - serving/httpapi: an http.Handler for the Open Inference Protocol V2
//     (KServe, Triton clients), plus V1 / Vertex AI and SageMaker adapters.
//   - limit: admission control (max in flight, a short queue, 429 with
//     Retry-After), so an overloaded model sheds load at its normal latency.
//   - batch: dynamic micro-batching middleware.
//   - cache: response cache middleware (sharded LRU, single-flight, Redis L2).
//   - telemetry: OpenTelemetry metrics and traces for the request path.
//   - repository: a model repository on disk (Triton's layout) with version
//     policies, warm-up, hot reload and explicit load/unload, one rollout
//     router per model; it imports serving and rollout and loads through a
//     function you give it, so it works with any backend.
//   - drift: drift monitoring middleware: reference profiles, windowed
//     statistics, alerts and a webhook for retraining, an HTML report.
//
// A request flows from the transport through middleware to the model:
//
//	HTTP (OIP V2, V1, SageMaker) or a Go call
//	  → telemetry → cache → limit → batch → backend/onnx
//
// Every stage is a serving.Middleware (func(Predictor) Predictor) and
// serving.Chain composes them, first outermost:
//
//	model, err := onnx.Load("fraud.onnx")
//	...
//	p := serving.Chain(telemetry.Middleware(), cache.Middleware(c))(batcher)
//	defer serving.Close(p)
//
// The examples folder holds runnable binaries: examples/predict (load and
// score), examples/realtime (the production-shaped HTTP server) and
// examples/drift (drift detected, retraining webhook called, report written).
package servekit

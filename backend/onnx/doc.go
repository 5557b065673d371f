// Package onnx serves ONNX models with ONNX Runtime, on the CPU or through
// the CUDA execution provider, over github.com/yalue/onnxruntime_go.
//
// Reach for Load (or LoadBytes): it returns a *Model, a serving.Predictor
// that also describes itself (serving.Describer), reports readiness
// (serving.Readier) and must be closed. A Model is safe for concurrent use:
// every goroutine shares its one ONNX Runtime session, which ONNX Runtime
// runs concurrently.
//
//	m, err := onnx.Load("fraud.onnx", onnx.WithVersion("3"), onnx.WithWarmup(2))
//	if err != nil { ... }
//	defer m.Close()
//	resp, err := m.Predict(ctx, req)
//
// # The runtime
//
// The shared library is found by InitRuntime (called by Load): the
// WithLibraryPath option, then $ONNXRUNTIME_LIB, then
// third_party/onnxruntime/ of the project (walking up from the working
// directory), then the dynamic loader's search path. It must be ONNX Runtime
// 1.29 or newer; a missing or older library gives an error saying how to
// install it (scripts/install-onnxruntime.sh). ONNX Runtime's environment is
// process-global: it is created once and never destroyed, whatever number
// of models come and go.
//
// # Requests
//
// Predict validates each request against the model's metadata
// (serving.Metadata.Validate) before ONNX Runtime sees it, so a wrong name,
// datatype or shape is an InvalidArgument error naming the input, and an
// absurd shape is refused before anything is allocated. All servekit
// datatypes are carried both ways: BOOL, UINT8-64, INT8-64, FP16, BF16
// (as bits), FP32, FP64 and BYTES (ONNX strings). NaN and Inf pass
// through untouched. Models whose inputs or outputs are not plain tensors
// of those types (sequences, maps, optionals, complex, float8, int4...) are
// refused at load with an Unimplemented error.
//
// Large numeric inputs are not copied: ONNX Runtime reads the request's
// slices, and outputs whose shape is known before the run (fixed dims, or
// dim 0 equal to the batch) are written straight into the response's
// slices; others are allocated by ONNX Runtime and copied once by the
// binding. Small requests (a few KiB per tensor) of all-numeric models are
// instead copied through pooled, preallocated ONNX Runtime values, which is
// cheaper than creating and releasing values per call (see frames.go). A batch of zero rows is run like any other (ONNX Runtime handles
// empty tensors); ops that cannot are reported as the run's error.
//
// Design choices and limits:
//   - ONNX Runtime computes every output of the graph whatever a request
//     asks for, so Request.Outputs selects what the response carries, not
//     what is computed.
//   - A run cannot be interrupted inside an operator. A ctx that can be
//     cancelled sets ONNX Runtime's terminate flag when it ends, which stops
//     the run at the next operator boundary; the error is then the ctx's.
//   - Errors ONNX Runtime reports during a run are Internal: inputs were
//     valid by the metadata, so what remains is the model or the runtime.
//   - Rank-0 (scalar) FP16, BF16 and string tensors, and FP16/BF16 outputs
//     whose shape depends on the data, cannot be passed through the Go
//     binding: they are refused with an Unimplemented error.
//   - One intra-op thread per session by default (DefaultIntraOpThreads):
//     concurrency comes from the goroutines calling Predict.
//
// # Telemetry
//
// Metrics (servekit.model.load.duration, servekit.model.warmup.duration,
// servekit.model.inference.duration, attributes model, version and code)
// and an onnx.run span per Predict (only under a recording parent span,
// so untraced calls cost nothing) go to WithMeterProvider and
// WithTracerProvider, by default the otel globals.
package onnx

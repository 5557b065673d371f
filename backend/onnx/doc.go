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
// # CUDA
//
// WithCUDA(id) runs the session on a CUDA device through ONNX Runtime's
// CUDA execution provider (scripts/install-onnxruntime.sh --gpu puts it
// beside the library; CUDA 13, cuDNN 9 and the NVIDIA driver must be on
// the loader's path). WithCUDAMemLimit, WithCUDAConvAlgoSearch,
// WithCUDACopyInDefaultStream, WithCUDAArenaExtendStrategy and, for any
// other provider option, WithCUDAProviderOption tune it; they are inert
// without WithCUDA, so one option list serves CPU and GPU deployments.
// Metadata.Device says where the model really runs: "cpu" or "cuda:N".
//
// When CUDA cannot run (the provider, a CUDA or cuDNN library or the
// driver is missing, or the device id does not exist) Load fails with an
// Unavailable error wrapping ErrCUDAUnavailable that names the missing
// library and how to provide it: a model meant for a GPU that silently
// ran on a CPU would be an outage that looks like slowness. Only with
// WithCPUFallback does it run on the CPU instead; the fall back is logged
// (WithLogger), kept in Model.FallbackReason, shown as Device "cpu" in
// the metadata and as device="cpu" on the load metric. A session that
// fails to be created on CUDA is retried on the CPU to tell a CUDA
// failure (the CPU session works) from a broken model (it does not);
// option values ONNX Runtime refuses are InvalidArgument and never fall
// back. The choice is made once, at load, as Triton makes it per instance
// group: a CUDA error during a run is an Internal error of that run.
//
// Data movement on CUDA: inputs are handed to ONNX Runtime in the
// request's own (pageable) memory and copied to the device once; outputs
// of known shape are copied from the device straight into the response's
// slices, so there is no host-side copy besides the transfers themselves
// (and the small-request frames below). The binding (onnxruntime_go
// v1.36.0) can bind host values with an I/O binding but cannot create
// device or CUDA-pinned tensors, so outputs cannot stay on the device and
// CUDA graphs cannot be used. An I/O binding of host values does the same
// copies as Run plus two cgo calls per run (the input must be bound again
// for every run: binding a host value to a CUDA session copies it at bind
// time); on the CPU it was no faster here (BenchmarkRawORTIoBinding against
// BenchmarkRawORT: 12.6 against 5.9 µs at batch 1, within noise at 32, on
// a loaded 2-core VM), so Predict does not use one. bench/gpu measures raw
// Run, the I/O binding, Predict and a model with the same transfers and
// almost no compute (the transfer floor) at batch 1, 16 and 256 on CUDA,
// which shows what share of a GPU run the copies take and whether binding
// pays there. Pinned staging buffers would only pay if the request were
// decoded straight into them; copying into them costs what the driver's
// own staging of pageable memory costs. With the micro-batcher the host
// copies are one gather into the joined input (the batcher's) and none on
// the way back (members get views of the joined output).
//
// # Requests
//
// Predict validates each request against the model's metadata
// (serving.Metadata.Validate) before ONNX Runtime sees it, so a wrong name,
// datatype or shape is an InvalidArgument error naming the input, and an
// absurd shape is refused before anything is allocated. All servekit
// datatypes are carried both ways: BOOL, UINT8-64, INT8-64, FP16, BF16
// (as bits), FP32, FP64 and BYTES (ONNX strings). NaN and Inf pass
// through untouched. A model whose inputs are not plain tensors of those
// types (a map, as skl2onnx's DictVectorizer takes) is refused at load
// with an Unimplemented error naming the input and its ONNX type.
//
// # Tabular models (ai.onnx.ml)
//
// Models exported by skl2onnx (scikit-learn) and onnxmltools (XGBoost,
// LightGBM) are served as exported. Their outputs become:
//
//   - a label output, INT64 or STRING [N]: as it is (BYTES for strings);
//   - probabilities or scores, FP32 [N, C]: as they are, with the
//     classifier's class labels in TensorSpec.Labels when the output is
//     the classifier's scores (through Identity, Cast, Normalizer or
//     Softmax) and has one column per label;
//   - a ZipMap output, seq(map(int64|string, float)) — the converters'
//     default for every classifier — an FP32 [N, C] tensor under the same
//     name, with ZipMap's class labels, in column order, in
//     TensorSpec.Labels. The model is rewritten before its session is made
//     so that the graph returns ZipMap's input in place of the maps and
//     ZipMap does not run: the numbers are the ones the maps would hold,
//     bit for bit, and batching, caching, drift and the batch job handle
//     the output as any tensor. Reading the maps back through the binding
//     instead cost 50 times more per batch of 64 rows than the whole
//     Predict (BenchmarkZipMap: 1.3 ms against 24 µs here).
//
// Outputs of other kinds — a sequence of tensors, a map, an optional, a
// sparse tensor, a sequence of maps not written by ZipMap (its columns are
// known only after a run), complex or 8-bit float elements — are not
// computed: Metadata.Unserved lists each with why, the load logs it
// (WithLogger), a request naming one is refused (Unimplemented) with the
// reason, and the model serves its other outputs. Only a model with no
// servable output fails to load. Triton refuses such models whole and asks
// for a re-export (zipmap=False); a server should not refuse to start over
// one output it will never be asked for.
//
// The cgo pointer rule: ONNX Runtime reads numeric inputs in place, and cgo
// panics when such memory shares its allocation with Go pointers. Small
// arrays are exactly what a decoder carves out of its request struct to
// save an allocation (servekit's REST decoder does), so inputs of up to
// 4 KiB are copied first (cheaper than the cgo calls of the run); larger
// inputs must be allocated on their own, as serving's constructors and
// every servekit decoder allocate them. This, not the binding, was why a
// model with a string output answered every REST request with "argument of
// cgo function has Go pointer to unpinned Go pointer": numeric-only models
// take the frames below, which always copy.
//
// Large numeric inputs are not copied: ONNX Runtime reads the request's
// slices, and outputs whose shape is known before the run (fixed dims, or
// dim 0 equal to the batch) are written straight into the response's
// slices; others are allocated by ONNX Runtime and copied once by the
// binding. Tensors of up to 4 KiB of all-numeric models, at up to 256
// rows, are instead copied through pooled, preallocated ONNX Runtime
// values, each tensor on its own (a wide model's 32 KB input is read in
// place while its 1 KB output is copied out), which is cheaper than
// creating and releasing values per call (see frames.go). A Predict then
// costs two allocations more than onnxruntime_go's own Run on
// preallocated tensors: the response (with its outputs, their shapes and
// the slice headers their interfaces point at) and the output's data,
// which is an allocation of its own so that a caller may hand it to cgo
// (BenchmarkOverhead; impl=paired gives the time it adds). A batch
// of zero rows is run like any other (ONNX Runtime handles empty tensors);
// ops that cannot are reported as the run's error.
//
// Close and runs: a run holds a reference to the session, not a lock.
// Close refuses new runs at once (serving.ErrClosed) and destroys the
// session when the runs in flight have returned; cancel their ctx to make
// that prompt.
//
// Design choices and limits:
//   - ONNX Runtime computes every output of the graph whatever a request
//     asks for, so Request.Outputs selects what the response carries, not
//     what is computed.
//   - A run cannot be interrupted inside an operator. When a ctx that can
//     be cancelled ends, the model's watcher (one goroutine a model, alive
//     while cancellable runs are in flight and for 0.1 s after) sets ONNX
//     Runtime's terminate flag within 5 ms, which stops the run
//     at the next operator boundary; the error is then the ctx's. A run
//     pays a lock to be watched (context.AfterFunc a run cost 0.3 µs and
//     two allocations), the goroutine a wake-up every 5 ms while runs are
//     in flight under different ctxs (requests). Runs that all share one
//     ctx for two checks in a row (a batch job's workers) are instead
//     watched by waiting on that ctx, which stops them as soon as it ends
//     and costs no wake-up while they run.
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
// WithTracerProvider, by default the otel globals. Predict reads the clock
// only for a reader: when the inference histogram is enabled as the run
// begins (a provider records it; the globals' delegate is enabled from
// the moment a provider is set) or when ctx carries a serving.Timing, so
// a model serving without either pays no clock read and every run a
// meter sees is timed exactly.
package onnx

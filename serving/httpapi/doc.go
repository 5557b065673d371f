// Package httpapi serves servekit Predictors over HTTP: the Open Inference
// Protocol (KServe V2) REST API with Triton's extensions (binary tensor
// data, classification, model configuration, statistics, model
// repository), and V1 adapters for TF Serving / KServe V1 / Vertex AI /
// SageMaker / Azure ML. It is a transport: the model table, the infer
// steps and the extensions are serving/oip's, the JSON codec
// serving/oip/oipjson's, shared with the gRPC transport.
//
// Reach for New and Handler.Handle first:
//
//	h := httpapi.New()
//	h.Handle("fraud", model)                             // default version
//	h.Handle("fraud", modelV2, httpapi.Version("2"))     // /versions/2
//	http.ListenAndServe(":8080", h)
//
// or, to serve the same models over gRPC too, an oip.Server both
// transports serve (grpcapi.New takes the Handler or the Server):
//
//	srv := oip.NewServer()
//	srv.Handle("fraud", model)
//	rest := httpapi.New(httpapi.WithServer(srv))
//	http.ListenAndServe(":8080", grpcapi.New(srv, grpcapi.WithFallback(rest)))
//
// A Handler is safe for concurrent use; Handle and Remove may run while it
// serves (readers see an immutable snapshot, never a lock). A request that
// names no version goes to the model's default Predictor: register a rollout
// router there with Default. The Request the Predictor sees carries the
// version the handler resolved (the default's registered version when the
// URL names none, empty for a default registered without one, such as a
// router), so a cache keys both addressings of one version alike.
//
// A default Predictor that holds versions itself (serving.Versioned, such as
// a rollout router) answers for every version it holds: /versions/{v}/infer
// calls the default with Request.Version = v, while /versions/{v}/ready and
// the version's metadata come from that version alone, so readiness tells
// the truth while versions load and unload. The X-Model-Version header pins
// a version when the URL names none (WithVersionHeader), and the
// X-Routing-Key header or a "routing_key" parameter becomes Request.Key, the
// key sticky canaries route on (WithRoutingKeyHeader). These rules are
// oip.Server's (Resolve, Infer), which Lookup, ModelReady, ModelMetadata
// and Ready delegate to.
//
// # Routes
//
//	GET  /v2                                        server metadata
//	GET  /v2/health/live | /v2/health/ready         200, or 503 + Retry-After
//	GET  /v2/models/{name}[/versions/{v}]           model metadata (serving.MetadataOf)
//	GET  /v2/models/{name}[/versions/{v}]/ready     200, or 503 (serving.IsReady)
//	POST /v2/models/{name}[/versions/{v}]/infer     inference
//	GET  /v2/models/{name}[/versions/{v}]/config    model configuration (Triton's JSON)
//	GET  /v2/models[/{name}[/versions/{v}]]/stats   statistics (Triton's statistics extension)
//	POST /v2/repository/index                       repository index  } admin: off unless the Server
//	POST /v2/repository/models/{name}/load          load a model      } enables repository control,
//	POST /v2/repository/models/{name}/unload        unload a model    } then behind its authoriser
//	POST /v1/models/{name}[/versions/{v}]:predict   V1 {"instances"}/{"inputs"}
//	GET  /v1/models/{name}[/versions/{v}]           {"name", "ready"}
//
// The extensions' answers are Triton's JSON (oipjson): 64-bit counts as
// numbers, every member Triton's clients index present. Repository
// requests without the admin credentials are 401 (with WWW-Authenticate)
// or 403, and all three are 501 when the Server does not enable
// repository control (oip.WithRepositoryControl); their bodies are at most
// 64 KiB. GET /v2 lists the extensions served: binary_tensor_data and the
// Server's (oip.Server.Extensions).
//
// Model metadata is the protocol's, plus "parameters": {"device": "cuda:0"}
// when the model says where it runs (serving.Metadata.Device): the schema
// has no field for it, and parameters is how the protocol carries extras
// elsewhere; clients skip members they do not know. In the same way an
// output with class labels (serving.TensorSpec.Labels: a classifier's
// probabilities, a ZipMap output) has "parameters": {"labels": [...]}, in
// column order, and the model's "parameters" list "unserved_outputs"
// ([{"name", "reason"}]: outputs the model has but the server cannot
// return, serving.Metadata.Unserved).
//
// Health answers are the status code with an empty body. SageMaker(model)
// adds GET /ping and POST /invocations; Vertex(model) adds
// $AIP_HEALTH_ROUTE and $AIP_PREDICT_ROUTE (listen on VertexPort);
// WithLiveRoute, WithReadyRoute, WithPredictRoute and WithInferRoute add
// any other paths (Azure ML liveness, readiness and scoring URIs). The V1
// routes also take a V2 body (inputs with datatypes).
//
// A V1 body has no shapes, so a tensor's shape is its nesting's, except
// that rows holding as many elements as one row of the input take the
// input's row shape: a model exported from a DataFrame (skl2onnx), one
// [N, 1] input per column, takes {"instances": [{"age": 42, "purpose":
// "car"}]}, each instance an object of one value per input, and
// {"inputs": {"age": [42, 35], ...}}, as KServe's scikit-learn server does.
//
// # Tensors in JSON
//
// "data" may be flat or nested; nested arrays must be regular (ragged rows
// are 400) and the element count must match "shape". BYTES elements are JSON
// strings and must be valid UTF-8 (send binary data for arbitrary bytes;
// non-UTF-8 output bytes are written as U+FFFD). FP16 and BF16 travel as JSON
// numbers, converted with serving.Float32ToFP16 / Float32ToBF16 (round to
// nearest even; a finite value beyond the type's range is 400).
//
// JSON has no NaN or Infinity. Triton writes bare NaN / Infinity / -Infinity
// tokens (rapidjson's kWriteNanAndInfFlag), which JavaScript's JSON.parse and
// Go's encoding/json reject. This package writes the strings "NaN",
// "Infinity" and "-Infinity" by default, as the proto3 JSON mapping does, and
// reads those strings in any float input; WithNonFinite(NonFiniteBare) gives
// Triton's tokens, NonFiniteNull gives null. Bare tokens in requests are 400:
// the decoder accepts exactly the JSON that json.Valid accepts.
//
// "id" is echoed; "outputs" selects outputs, each with an optional
// parameters.binary_data; request "parameters" go to serving.Request.Params
// (timeout in µs, priority, cache_bypass, binary_data_output).
//
// # Binary tensor extension
//
// With an Inference-Header-Content-Length header the body is that many bytes
// of JSON followed by the raw tensors, in input order, of the inputs whose
// parameters carry binary_data_size (serving.FromRaw). Outputs asked for with
// binary_data (or binary_data_output for all) come back raw after the JSON,
// announced by parameters.binary_data_size, with the header set to the JSON
// length and Content-Type application/octet-stream.
//
// # Classification extension
//
// Triton's: an output asked for with "parameters": {"classification": k}
// comes back as its k top classes per row, BYTES "value:index:label"
// (serving.Classify; labels from the model's metadata, "value:index" when
// it has none), JSON or binary as that output asks. k must be an integer
// from 1 to serving.MaxClassification and the output numeric, else 400.
// It is applied to the answer after the chain, so a cached answer serves
// every k. The server metadata lists "classification" among the extensions.
//
// # Errors
//
// Errors are {"error": "..."} with the status of Status: InvalidArgument 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404 (unknown model,
// version or output), body over the limit 413,
// ResourceExhausted 429, Unimplemented 501, Unavailable or not ready 503,
// DeadlineExceeded 504, anything else 500. 429 and 503 carry Retry-After from
// serving.RetryAfterOf (whole seconds, rounded up), else WithRetryAfter.
// A client that goes away gets Canceled, logged as 499 (nginx's "client
// closed request"); it never reads it. A panic in the Predictor chain is
// recovered into a 500 whose message does not repeat the panic value, and
// logged at ERROR with its stack (WithLogger, or the Server's logger);
// left to net/http it would drop the connection unanswered. Request
// bodies are never logged.
//
// # Limits and deadlines
//
// WithMaxBodyBytes (default 64 MiB, http.MaxBytesReader, 413) and
// WithMaxElements (per input tensor, default 1<<24, checked from the shape
// before allocating) bound the work a request may cause; WithMaxInputs and
// WithMaxOutputs (1024 each), WithMaxParameters (256 values, nested ones
// included) and WithMaxInstances (V1 rows, 1<<20) cap the counts whose
// decoder state costs more than their bytes (400 at the one too many), and
// shapes have at most serving.MaxRank dims. No honest client nears these
// defaults: a model with a thousand named inputs is already unusual.
//
// Decoding keeps serving's cost budget (serving.DecodeBudget, 16 × the body
// + 1 MiB): the body buffer grows as bytes arrive, never from
// Content-Length; a JSON data array is sized from its shape only while the
// request's shapes claim no more elements than its JSON could hold, else its
// elements are counted first; V1 tensors, which have no shape, are always
// counted first; binary tensors go through serving.FromRaw, which checks the
// bytes before allocating; repeated names are found with a set. An output
// asked for twice is 400. TestDecodeBudget sends issue 18's hostile requests
// and generated variants through the handler, and the fuzz targets check the
// budget on every input. The deadline is
// the earliest of parameters.timeout (µs, Triton's), the Timeout header (a Go
// duration, "250ms"; rename it with WithTimeoutHeader), the Grpc-Timeout
// header (gRPC's "250m" = 250 ms) and WithMaxTimeout. The handler never holds a request
// after its context ends: Predictors honour ctx. W3C trace context is
// extracted from the headers with otel.GetTextMapPropagator().
//
// Each request's time is recorded for the statistics (oip, serving.Timing)
// in the allocation that holds its decoded form: statistics cost no
// allocation of their own.
//
// # Embedding
//
// Mount under a prefix in an existing mux, either way:
//
//	mux.Handle("/ml/", http.StripPrefix("/ml", httpapi.New()))
//	mux.Handle("/ml/", httpapi.New(httpapi.WithPrefix("/ml")))
//
// Or wrap the service's handler, so inference routes are added and all other
// paths fall through to it:
//
//	srv.Handler = httpapi.New(httpapi.WithFallback(existing))
//
// # Performance
//
// Bodies are read into pooled buffers and decoded by oipjson in one pass
// that also checks JSON syntax and UTF-8 (see its doc). Infer requests on
// plain paths skip the ServeMux. The decoder copies what it keeps, so a V2
// answer is written with strconv.Append* into the buffer the body was read
// into, and handed to net/http in one Write: one pooled buffer a request.
// Content-Type comes from a shared slice (no Header.Set); an answer that
// fits net/http's 2 KiB buffer gets its Content-Length from net/http,
// which measures it, and a longer one from the handler, so that no answer
// goes out chunked. For a small request (the fraud model's 8 floats) the
// handler allocates one object beyond the model's answer, holding the
// decoded request and its statistics record (plus a deadline's context
// when one applies). The
// V1 adapters decode with the same scanner, in two passes (count, then
// read), since they have no shapes to size from. See BenchmarkInferJSON
// against BenchmarkPredictInProcess, and BenchmarkServe for the handler
// behind a real http.Server beside net/http's own floor.
package httpapi

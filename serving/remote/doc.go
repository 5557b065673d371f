// Package remote is a model on a V2 server (the Open Inference Protocol:
// Triton, KServe, servekit itself, any other) as a serving.Predictor, so
// everything servekit composes works across the network: a rollout router
// can hold an in-process version and a remote one, a shadow can mirror to
// a remote challenger, a cache or a batcher can sit in front of a remote
// model, batch/job can score through a server.
//
// Reach for Dial:
//
//	p, err := remote.Dial(ctx, "http://triton:8000", "fraud", remote.WithVersion("2"))
//	resp, err := p.Predict(ctx, req)
//
// "http://" and "https://" speak REST, "grpc://" (HTTP/2 without TLS, as
// Triton and grpc-go listen) and "grpcs://" gRPC. A Predictor is safe for
// concurrent use and reuses its connections: REST keeps up to 256 idle
// per host (net/http's default of 2 would dial for every other concurrent
// request), gRPC multiplexes one HTTP/2 connection. WithHTTPClient shares
// a client, and its connections, between Predictors.
//
// # What travels
//
//   - REST requests are JSON while the raw inputs are under 1 KiB
//     (WithBinaryThreshold), Triton's binary tensors above it, and binary
//     too whenever JSON cannot carry a value exactly (NaN, infinities,
//     BYTES that are not UTF-8); answers are asked for as binary tensors
//     (binary_data_output), which servers without the extension ignore.
//     So every datatype comes back bit for bit as the in-process Predictor
//     answers it. gRPC sends raw_input_contents and reads raw or typed
//     contents.
//   - The deadline of ctx becomes the protocol's: Triton's "timeout"
//     parameter in microseconds (REST and gRPC: Triton's queue reads it
//     from both) and, over gRPC, grpc-timeout too.
//   - Request.Key travels in the X-Routing-Key header (gRPC metadata
//     x-routing-key), which servekit's transports make the server's
//     Request.Key, so sticky canaries stick across the hop; other servers
//     ignore it. The trace context of ctx is injected with OpenTelemetry's
//     propagator (WithPropagator; the global one by default).
//   - The version is the one WithVersion pins, else the server's default;
//     Request.Model and Request.Version are not sent. A Predictor is one
//     remote model, as an in-process one is; a rollout router names its
//     versions in Request.Version, which need not be the server's names.
//
// # Errors
//
// A server's status comes back as the serving code it stands for (400
// InvalidArgument, 404 NotFound, 429 ResourceExhausted, 503 Unavailable,
// 504 DeadlineExceeded, 501 Unimplemented, 401/403, else Internal; gRPC
// codes one to one), with the message of its {"error"} body. 429 and 503
// carry Retry-After (gRPC: a RetryInfo detail or retry-after metadata) as
// serving.Error.RetryAfter, so limit and batch/job back off for as long as
// the server asked (at most a day). A server that cannot be reached is
// Unavailable; an answer that does not decode is Internal.
//
// # Cost
//
// A server need not be trusted. An answer is read within
// WithMaxResponseBytes (64 MiB by default), growing with the bytes that
// arrive, never with a Content-Length claimed; it is decoded by
// oipjson.DecodeResponse or grpcapi.Unmarshal, which count every list
// before allocating it and cap counts by WithLimits, so decoding an answer
// of n bytes allocates at most serving.DecodeBudget(n), as a server's
// decoding of a request does.
//
// # Health and metadata
//
// Dial reads the model's metadata (WithMetadata gives it instead, for
// servers without the endpoint), which Metadata returns. ServerLive,
// ServerReady, ModelReady, ServerMetadata and ModelMetadata ask the
// server, with a context. Ready makes no call: it reports the Predictor
// open and, with WithReadinessProbe, the model ready when last asked (a
// goroutine asks at the interval given; a call that ends Unavailable
// says not ready at once), so a rollout router routes around a remote
// version whose server is down.
//
// # Measured
//
// BenchmarkPredict: a linear model served by servekit on loopback in the
// same process, on a shared 2-core VM, medians of 5 in one run (compare
// ratios). 8 rows of 8 FP32 (256 B) take 55 µs over REST, 124 µs over
// gRPC to the Connect handler and 108 µs to grpcserver.New's grpc-go
// server (the client is Connect's: an HTTP/2 stream per call), against
// 0.3 µs in process. 2048 rows (64 KiB) take 0.36 ms over REST with
// binary tensors, 3.0 ms as JSON (8.2x), 0.50 and 0.38 ms over gRPC. The
// hop, not the client, is the cost: a model that runs for microseconds
// belongs in process, which is where a hybrid rollout moves it.
//
// # Tested against
//
// servekit's servers over every protocol (REST, gRPC on the REST port and
// on grpcserver.New's: servingtest.Conformance, every datatype bit for
// bit); two implementations that share no code with it:
// the Node.js onnxruntime-node peer in bench/node-peer (REST, the demo
// model bit for bit) and a grpc-go server on the generated messages
// (gRPC); and a program of another module (testdata/outside), which
// TestOutsideModule writes into a temporary module requiring servekit
// through a replace of the checkout and builds from the module cache
// (GOFLAGS=-mod=mod, GOPROXY=off): a user's view of the package, the
// conformance check included.
package remote

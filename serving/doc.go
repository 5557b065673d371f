// Package serving is servekit's vocabulary: tensors, requests and responses,
// the Predictor interface every model and middleware implements, and the one
// error type with its codes.
//
// Reach for Predictor first. A model backend (backend/onnx) is a Predictor;
// middleware (cache, batch, rollout, drift) is a Middleware, a
// func(Predictor) Predictor, composed with Chain where the first is the
// outermost:
//
//	c, err := cache.New(cache.WithMaxEntries(100_000))
//	...
//	defer c.Close() // runs last: the cache is yours, handed to the chain
//	p := serving.Chain(telemetry.Middleware(), c.Middleware(), batch.Middleware())(model)
//	defer serving.Close(p) // closes every layer, then the model
//
// # Construction and ownership
//
// One rule, written on Middleware, for every middleware package:
//
//   - State that belongs to one Predictor comes with New(next, opts...),
//     returning the concrete layer, and Middleware(opts...) for Chain:
//     batch, limit, telemetry, predlog. State shared by several chains is
//     a value of its own with a Middleware method: cache.Cache (one memory
//     bound and one single-flight group for many models), drift.Monitor and
//     quality.Monitor (one worker and one report for every model),
//     rollout.Shadow (one comparison of a primary with its challenger).
//   - A middleware owns the Predictor it wraps: its Close releases what the
//     layer holds, then closes that Predictor, so closing the outermost
//     layer (or Close, for a chain whose layers you do not know) closes the
//     chain, outermost first. It never closes a value handed to it (a
//     Cache, a Monitor, a Shadow and its challenger, a predlog sink):
//     whoever made that closes it, after the chains that use it. So one
//     call closes a chain, and closing one chain never breaks another that
//     shares a value with it.
//   - Constructors validate: an invalid option is an InvalidArgument error
//     from New (or NewMonitor, NewShadow, NewFileSink...), never clamped or
//     ignored, since a clamp hides the mistake until it costs in
//     production. Middleware(opts...) cannot return an error, so its layer
//     answers every request with New's error instead.
//
// Contracts:
//   - Predictors are safe for concurrent use and must not modify the Request.
//   - A caller may reuse a Request's tensor data once Predict returns, so
//     anything that keeps a request or a response past that point (a shadow
//     copy, a drift observer, a prediction logger) copies what it keeps
//     (Tensor.Clone) before returning.
//   - Tensors share their data; treat what a Response holds as read-only.
//   - ctx bounds every call; errors carry a Code (CodeOf) that transports map
//     to statuses: InvalidArgument 400, NotFound 404, ResourceExhausted 429,
//     Unavailable 503, DeadlineExceeded 504, Internal 500.
//   - Capabilities beyond Predict are optional interfaces found by type
//     assertion, as database/sql/driver does: Describer (metadata), Readier,
//     Versioned (a router holding versions), io.Closer, and Wrapper for
//     middleware, through which MetadataOf, IsReady, VersionsOf and Close
//     see the whole chain.
//   - What a layer measures about one request (its queue wait, the model's
//     compute time and runs, a cache's hit or miss) it adds to the Timing
//     the request's context carries (TimingOf), which a transport reads for
//     the protocol's statistics: how middleware reports without importing
//     anything but this package.
//
// The batch dimension is dimension 0 of inputs whose metadata declares it
// dynamic (-1); TensorSpec.Batchable reports it.
//
// # Cost
//
// What a client sends is the only thing that may size what the server
// spends on it: the transports (httpapi, grpcapi) keep this contract.
// Decoding a request of n bytes, reading its body or message included,
// allocates at most DecodeBudget(n) = 16 × n + 1 MiB with the transports'
// default limits. For a compressed gRPC message n is the message inflated,
// itself bounded by the message limit before inflating goes on. How:
//
//   - Nothing is sized from a length, count or shape the client claims
//     before the bytes are there: a body buffer grows as bytes arrive,
//     never from Content-Length; FromRaw checks that raw holds the shape
//     before allocating; a JSON data array gets room for its shape only
//     while the shapes of the request claim no more elements than its JSON
//     could hold (each element at least "0,"), else its elements are counted
//     first; a protobuf message's repeated fields are counted on the wire
//     before their slices are made.
//   - What costs more than the bytes that carry it is capped: inputs and
//     requested outputs (1024 each), parameters (256 values), V1 instances
//     (1<<20), shape dims (MaxRank), elements per tensor (1<<24), nesting.
//     The caps are options of each transport; the 1 MiB is what the capped
//     counts cost at their defaults (a 3-byte "{}" input costs a few hundred
//     bytes of decoder state).
//   - Work is linear: repeated names are found with a set, not by pairs.
//
// The 16 covers the worst element encodings: a BYTES element of 2 to 4 bytes
// on the wire becomes a 24-byte slice header (12 × for protobuf's tag and
// length, 8 × for JSON's `"",`), an int64 written `0,` 8 bytes, plus the
// buffer the body or message is read into as it arrives (under 3 × for
// httpapi's, under 4 × for Connect's). The worst, gRPC BYTES contents of
// empty elements, reaches 16.0 × at sizes just past a power of two, within
// the budget for every message up to the 4 MiB default limit. The README's
// reliability section has the worst ratio measured per transport; every
// transport's tests send hostile requests through the real handler and fail
// past the budget, and their fuzz targets check it on every input.
package serving

// Package serving is servekit's vocabulary: tensors, requests and responses,
// the Predictor interface every model and middleware implements, and the one
// error type with its codes.
//
// Reach for Predictor first. A model backend (backend/onnx) is a Predictor;
// middleware (cache, batch, rollout, drift) is a Middleware, a
// func(Predictor) Predictor, composed with Chain where the first is the
// outermost:
//
//	p := serving.Chain(cache.New(...), batch.New(...))(model)
//	defer serving.Close(p)
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
//
// The batch dimension is dimension 0 of inputs whose metadata declares it
// dynamic (-1); TensorSpec.Batchable reports it.
package serving

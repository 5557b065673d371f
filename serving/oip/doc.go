// Package oip is the Open Inference Protocol's transport-neutral core: the
// model table, the infer steps, and Triton's model configuration,
// statistics and model repository extensions, written once and served by
// every transport (serving/httpapi for REST, serving/grpcapi for gRPC), as
// Triton's in-process server sits under its HTTP and gRPC front ends.
//
// Reach for NewServer and Server.Handle first, then hand the Server to the
// transports:
//
//	srv := oip.NewServer()
//	srv.Handle("fraud", model, oip.Version("1"))
//	rest := httpapi.New(httpapi.WithServer(srv))
//	mux.Handle("/", grpcapi.New(srv, grpcapi.WithFallback(rest)))
//
// A model registered once then answers over both protocols with the same
// resolution rules (a version registered on its own, or held by a default
// Predictor that holds versions itself, such as a rollout router), and
// counts in the same statistics. A Server is safe for concurrent use;
// Handle and Remove may run while it serves (readers see an immutable
// snapshot, never a lock). It starts no goroutines and owns no Predictor.
//
// # The infer steps
//
// A transport decodes a request, then calls Resolve (an unknown model is
// NotFound before its body is read) and Infer, which does what every
// transport used to do on its own: the resolved version goes into the
// request (so a cache keys both addressings of a version alike), the
// routing key (the "routing_key" parameter, else the transport's header),
// the deadline (the earliest of the "timeout" parameter, the transport's
// header and its cap), a readiness check (Unavailable), the call with a
// panic turned into a logged Internal error, output selection, Triton's
// classification extension, and the statistics. Errors carry serving's
// codes; each transport maps them to its statuses.
//
// # Statistics
//
// Statistics are Triton's statistics extension, per model version:
// success and fail (count and time from arrival to answer), queue,
// compute_input, compute_infer and compute_output, cache_hit and
// cache_miss, inference and execution counts, and runs per batch size.
// The layers that measure these report them through a serving.Timing the
// transport carries in the request's context (Call.Timing): the limiter
// and the batcher add their waits, the batcher charges each member its
// batch's compute and has one member report the batch's run, the ONNX
// Runtime backend splits each run in three phases, the cache says hit or
// miss. No middleware imports this package: they write to serving.Timing,
// and Infer reads it when the call returns. They are the same
// measurements the layers record as OpenTelemetry metrics, so the two
// agree (cmd/servekit tests it). A Predictor that reports nothing
// counts as one run per request, so every successful request shows in
// the queue and compute counts, as in Triton, whose perf_analyzer finds
// the version it measures by them.
//
// # Configuration
//
// Config is Triton's model-configuration extension: the configuration of
// a repository model (AttachRepository), its config.pbtxt completed from
// the model as Triton's auto-complete completes it, or, for any other
// model, one made from what its chain says (SynthesizeConfig): the
// metadata's inputs and outputs, and max_batch_size with dynamic_batching
// only when a layer really batches (serving.Metadata.MaxBatchRows), so
// a client is never told to send batches nothing joins.
//
// # Repository control
//
// Triton's repository extension (index, load, unload) is an admin
// capability: off unless the Server is built WithRepositoryControl, and
// then behind its authoriser (admin.BearerToken, the admin API's), which
// transports call with the request as it arrived (AuthorizeRepository).
// The repository is an optional capability (Repository), which
// *repository.Repository implements; without one, the index lists the
// registered models.
//
// # Names
//
// oip is the protocol's name (KServe calls it the Open Inference
// Protocol, Triton the KServe protocol plus its extensions), short enough
// to read in every transport: oip.Server, oip.Call, oip.Version. Its JSON
// codec lives in the sub-package oipjson, which the table does not import:
// gRPC needs none of it, and what needs only the codec (the prediction
// logger, a repository's warm-up files, a Go client) uses no table.
package oip

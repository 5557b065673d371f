// Package batch is servekit's dynamic micro-batcher: an in-process
// counterpart of Triton's dynamic batcher. It queues requests for one model
// and runs them together along dimension 0, so a model that costs about
// the same for 1 row as for 32 answers many callers per run.
//
// Reach for New first:
//
//	b, err := batch.New(model, batch.WithMaxBatchRows(64), batch.WithMaxDelay(time.Millisecond))
//	...
//	defer b.Shutdown(ctx) // or serving.Close(chain)
//
// or Middleware inside serving.Chain. A *Batcher is safe for concurrent
// use; Stats, Close and Shutdown may be called from any goroutine.
//
// # What may share a run
//
// New reads the model's metadata (serving.MetadataOf) and requires every
// input and output to batch on dimension 0 (serving.Metadata.Batchable);
// otherwise it fails with ErrNotBatchable. Middleware cannot return an
// error, so it passes such a model through unbatched, and for invalid
// options it returns a Predictor whose every call fails with that error
// (InvalidArgument), so the mistake shows on the first request.
//
// Requests are grouped by a batch key: model and version, input names with
// datatypes and non-batch dims, the requested outputs in order, and
// parameters other than priority and timeout. Requests with different keys
// are never joined. A request is checked with Metadata.Validate before it
// is queued, so it cannot break a joined run by its shape.
//
// # Rows, not requests
//
// Batch and queue bounds count rows (dimension 0), because rows are what
// the model pays for: a 10-row request counts 10. A request larger than the
// max batch rows is split into chunks of at most that size, which queue
// and run like any request (possibly in different batches); the caller
// gets the chunks' answers joined back in order. Splitting rather than
// refusing keeps the bound a tuning knob, not an API limit.
//
// # When a batch runs
//
// A batch key's queue is dispatched, while a run slot is free, when:
//   - it holds the max batch rows;
//   - the oldest queued request has waited the max delay — measured from
//     the first request of the forming batch, not the last, so the delay
//     bounds the wait of every request;
//   - it holds the smallest preferred size (WithPreferredBatchRows); the
//     batch is then cut at the largest preferred size the queue can fill;
//   - adaptive mode (the default) says so (below);
//   - Shutdown is draining.
//
// A dispatched batch takes requests in priority order, FIFO within a
// level, and stops at the first that does not fit, so nobody is overtaken
// by a smaller request of its own level.
//
// WithMaxInFlight bounds the batches running at once; the default is 1.
// The next batch forms while one runs, and the run that ends takes the
// next ready batch itself, without a hand-off to the scheduler, so the
// model is idle only for that moment. Measured on the 2-core CPU machines
// here (bench_test.go), a second concurrent batch fought the first for
// the same cores (ONNX Runtime already uses them inside one run) and gave
// smaller batches, lower throughput and a worse p99; raise it for a GPU or
// a model that leaves cores idle.
//
// # Adaptive mode
//
// A fixed max delay costs every request at low load up to that delay for
// nothing. In adaptive mode the batcher keeps exponentially weighted means
// of the gap between arriving rows and of the run time of a batch, and
// their ratio, target = run time / gap, is the rows expected to arrive
// during one run. When nothing runs, a queue holding at least target rows
// is dispatched at once: at low load target is below 1, so a lone request
// runs immediately — in the caller's goroutine, with the caller's ctx, and
// without the queue (the "direct" path), so it costs about what an
// unbatched call costs. While a batch runs, requests accumulate ("batch
// while busy") and the end of the run takes them; a second batch starts
// only when the queue is full or the max delay passed. An idle spell shows
// as one long gap and brings the target back to 1. WithAdaptive(false)
// gives Triton's rules: full, preferred size, or max delay.
//
// # Priorities
//
// serving.ParamPriority follows Triton: 1 is the highest, 0 or absent means
// the default level, and WithPriorityLevels sets the number of levels
// (default 2) and the default (1, so requests without a priority are never
// held back, and work sent with priority 2 runs only when nothing at level
// 1 waits). A value beyond the levels counts as the lowest. Higher levels
// are taken first into every batch, across batch keys too; a busy model
// can starve lower levels, as in Triton.
//
// # Failures and cancellation
//
// If a joined run fails with an error that may be one member's fault (any
// code but Unavailable, ResourceExhausted, Canceled, DeadlineExceeded), each
// member is run again alone, so only the culprit fails; Stats.Isolations
// counts it. A model panic becomes an Internal error.
//
// A caller whose ctx ends returns at once. A queued request is then removed
// and never runs (Rejected.Canceled or Rejected.Deadline); a running one
// leaves its batch, whose other members still get their answers, and the
// run's own context is cancelled once no member is left waiting. Joined
// runs use the batcher's context, never one caller's. serving.ParamTimeout
// (µs), if present, bounds the request like a ctx deadline.
//
// # Queue bound and Retry-After
//
// WithMaxQueueRows bounds the rows waiting (queued, not yet running;
// default 16 × max batch rows). A request that would pass it is rejected
// at once, never blocked, with an error wrapping serving.ErrOverloaded
// (ResourceExhausted) whose RetryAfter estimates when the queue will have
// drained: the batches needed to run what waits, divided by the run slots,
// times the mean run time (the max delay, at least 1 ms, before any run).
// A request larger than the bound is admitted into an empty queue, so no
// size is refused for ever.
//
// # Closing
//
// Close stops accepting requests (serving.ErrClosed), fails the queued ones
// with serving.ErrClosed, waits for running batches to answer their callers
// and stops the scheduler goroutine; it is idempotent and does not close
// the model (serving.Close walks the chain, batcher first, so the model is
// still open while it finishes). Shutdown(ctx) drains instead: everything
// queued runs at once; if ctx ends first, what is still queued fails with
// serving.ErrClosed, running batches are cancelled (a direct call under a
// ctx that can never end runs on) and ctx's error is returned.
//
// # Observability
//
// Stats returns plain counters. Metrics (scope ScopeName, attributes model
// and version): servekit.batch.queue.duration (s, per request),
// servekit.batch.run.duration (s, per batch), servekit.batch.size ({row},
// per batch), servekit.batch.requests ({request}, per batch),
// servekit.batch.queue.depth (up-down counter, {row}) and
// servekit.batch.rejected ({request}, attribute reason = overloaded,
// canceled, deadline or closed). Spans batch.queue (time queued) and
// batch.run (continuing the first member's trace, linking every member)
// are started only under a recording parent span, so untraced requests pay
// nothing for them.
package batch

// Package limit is admission control for a Predictor: a concurrency limit
// with a short bounded queue, so that an overloaded server answers what it
// can at its normal latency and refuses the rest at once with 429 and
// Retry-After, instead of queueing without bound until every request times
// out.
//
// Reach for Middleware (or New) first, just above the model or batcher and
// below the cache, so cache hits never wait for a slot:
//
//	p := serving.Chain(telemetry.Middleware(), c.Middleware(), limit.Middleware(limit.WithMaxInFlight(4)))(model)
//
// A *Limiter is safe for concurrent use; Stats and Close may be called from
// any goroutine.
//
// # What it does
//
// At most WithMaxInFlight requests run in the wrapped Predictor at once
// (default GOMAXPROCS). A request that finds every slot taken waits, in
// FIFO order, in a queue of at most WithMaxQueue requests (default: as many
// as the slots). A request is refused at once, never blocked, with an error
// wrapping serving.ErrOverloaded (ResourceExhausted: HTTP 429) when:
//   - the queue is full (reason queue_full);
//   - its estimated wait passes WithMaxWait (max_wait), or it waited that
//     long;
//   - its estimated wait plus one run passes its context's deadline
//     (deadline): it would time out anyway, and refusing it now lets the
//     client retry elsewhere while it still has time.
//
// The estimates come from an exponentially weighted mean of the time a
// request holds a slot: slots free at max-in-flight per mean run, so the
// request at queue position k waits about k × mean / max in flight. The
// error's RetryAfter is the time the current queue needs to drain, and at
// least one mean run. A queued caller whose context ends leaves at once
// with Canceled or DeadlineExceeded.
//
// # Why this shape
//
// Under sustained overload a queue only adds latency: by Little's law every
// queued request beyond what drains in one run time waits longer, while
// throughput stays what the model gives. The default queue therefore holds
// one round of slots, so an admitted request waits about one run and its
// latency stays within about twice the unloaded latency, however hard the
// server is pushed; bursts larger than that are what Retry-After and client
// retries are for. Raise WithMaxQueue (and set WithMaxWait) for bursty
// traffic with a loose latency target.
//
// The limit is fixed, not adaptive (the gradient and AIMD algorithms of
// Netflix's concurrency-limits or Envoy's adaptive concurrency): those
// discover the capacity of a remote dependency from its latency, and
// oscillate while they do, whereas an in-process model's capacity is known
// (cores for a CPU model, the batch for a batcher) and latency-based probing
// on a shared machine mostly measures the neighbours. Choose the limit from
// a closed-loop run (see the reliability tests): the smallest concurrency
// that reaches full throughput.
//
// Rejecting is cheap but not free: the HTTP layer has already read and
// decoded the request. A model whose run costs less than its HTTP handling
// (a few microseconds) is protected by the bounds of the transport instead
// (http.Server timeouts, body limits); a limiter shines in front of models
// whose run dominates.
//
// A panic in the wrapped Predictor releases its slot and goes on up (the
// HTTP handler turns it into a 500). A Predictor that ignores its context
// keeps its slot until it returns: the limit then also bounds the
// goroutines stuck in it.
//
// # Observability
//
// Stats returns plain counters. Metrics (scope ScopeName, attributes model
// and version from the wrapped Predictor's metadata): MetricInFlight and
// MetricQueueDepth (observable up-down counters, read at collection),
// MetricQueueDuration (s, for requests that waited) and MetricRejected
// (attribute reason = queue_full, max_wait, deadline, canceled or closed).
// Requests admitted without waiting cost two lock round-trips and two clock
// reads, and record nothing (BenchmarkLimiter).
//
// # Closing
//
// Close refuses new requests and fails the queued ones with
// serving.ErrClosed, then closes the wrapped Predictor, which a Limiter
// owns (the rule on serving.Middleware). It is idempotent.
package limit

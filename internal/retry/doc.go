// Package retry is the one retry loop of the module: the drift webhook, the
// prediction logger's CloudEvents sink and the batch job retry through it,
// so they agree on what a retry is.
//
// A Policy retries an operation with exponential backoff and jitter: the
// wait before retry n is Base·2ⁿ capped at Max, drawn between half of it
// and all of it ("equal jitter"), so replicas that failed together do not
// retry together, yet each still backs off. A hint from the other side
// (After: an HTTP Retry-After, a serving.Error's RetryAfter) lengthens the
// wait, never beyond Max. Every wait selects on the context, and a wait
// that would outlast the context's deadline is not started: the operation
// fails at once with its last error rather than sleeping into a deadline.
// An error marked Permanent stops the loop.
package retry

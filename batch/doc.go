// Package batch is servekit's dynamic micro-batcher: an in-process
// counterpart of Triton's dynamic batcher. It queues requests for one model
// and runs them together along dimension 0, so a model that costs about
// the same for 1 row as for 32 answers many callers per run.
//
// Reach for New first:
//
//	b, err := batch.New(model, batch.WithMaxBatchRows(64), batch.WithMaxDelay(time.Millisecond))
//	...
//	defer b.Close() // closes the model too; Shutdown(ctx) first drains the queue
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
// Batches run on one long-lived runner goroutine per slot (a goroutine
// started per batch cost more: its stack grew on every start). The next
// batch forms while one runs, and the run that ends takes the next ready
// batch itself, without a hand-off. Measured on the 2-core CPU machines
// here (bench_test.go, batched-fl2), a second slot gave no gain with the
// adaptive rule below (which starts a batch only when none runs) and a
// worse p99 before it; raise it for a GPU or a model that leaves cores
// idle, together with WithAdaptive(false) or preferred sizes.
//
// # Adaptive mode
//
// A fixed max delay costs every request at low load up to that delay for
// nothing, and dispatching whatever is queued the moment a slot frees
// splits one load into many small runs. In adaptive mode (the default) the
// batcher counts the callers on their way: inside Predict but neither
// queued nor running, that is, about to queue, or just answered and not
// yet returned. In a closed loop (a caller sends its next request when it
// has the last answer) the answered ones are about to come back.
//
//   - A request that finds the batcher idle (nothing queued or running)
//     and no other caller on its way runs at once in the caller's
//     goroutine, with the caller's ctx and without the queue (the "direct"
//     path, Stats.Direct), so a lone request costs about what an unbatched
//     call costs. A request of one row without parameters takes it
//     without a lock, under any ctx (context.Background, as in-process
//     callers use, or an HTTP or gRPC request's): one compare-and-swap
//     takes the run slot, one gives it back, no clock read, no metric
//     record (see Performance).
//   - While a batch runs, requests queue ("batch while busy"); a second
//     batch starts only when the queue is full or the max delay passed.
//   - With no batch running, a queue is dispatched once no caller is on
//     its way: waiting for them costs a goroutine wake-up or two, while
//     running without them would split one batch into several runs. The
//     caller whose arrival completes the batch dispatches it.
//
// Under 64 closed-loop callers this turns batches of about 2 rows into
// batches of 30 to 60. A caller caught between two of its calls at the
// moment the last one queues is not on its way, and joins the next batch;
// a caller answered and gone for good releases the queue as it leaves
// (through the scheduler, so that a caller about to come back usually
// does first). The max delay still bounds every wait. WithAdaptive(false)
// gives Triton's rules: full, preferred size, or max delay.
//
// # Joining only when it pays
//
// Batching is a bet: a joined run of n rows must cost less than n runs
// alone, by more than the queue costs (a lock, a goroutine park and
// wake-up per request), and one run slot running joined batches must
// answer more than every core running requests alone. For a model whose
// cost grows with its rows (a conv net: a batch of 64 images costs about
// 64 images, or more once they leave the cache) on a machine where runs
// alone use every core, the bet loses: before this mode it lost up to a
// third of the throughput there. Whether it pays depends on more than the
// model (the requests' own cost around the run, what runs beside one
// another cost, the cores, the callers), and a formula over measured run
// times chose wrongly here, so in adaptive mode the batcher measures what
// it is meant to improve (costModel): rows answered per second, joining
// and running alone.
//
//   - It counts rows answered, and the process's CPU time, over windows
//     of at least 20 ms (and 16 runs). It starts joining; after 160 ms,
//     and now and then after that, it spends two windows in the other
//     mode (after one unmeasured window that lasts until the old mode's
//     runs are over: a joined backlog drained, runs alone ended) and
//     compares them with all the best mode's windows since the last
//     exploration, pooled: rows over time, and CPU time over rows. A
//     pause in the load (no answer for a window's length) restarts the
//     window: it would count the pause's time, and whatever CPU other
//     work spent meanwhile (the process's other models and requests), for
//     the mode it measures.
//   - Rates decide: the other mode must answer more by a margin, 10%
//     over one exploration, down to 2% as explorations too close to tell
//     (a loss within the noise, or a smaller win) are pooled, both modes'
//     rates together, measured again soon. A fixed 10% kept a mode that
//     lost by 5 to 9% for ever; a move within 10% is undone only on as
//     much evidence as made it, so a tie does not flap. Where the
//     rates cannot tell (within twice their noise), the CPU time a row
//     costs decides, if the rates do not lean the other way: joining is
//     kept only if it saves at least a tenth of the CPU per row, and
//     running alone is chosen only if it costs less than 1.5 times
//     joining's. On a machine shared with other work the cores a process
//     gets change from one 20 ms window to the next, and rows per second
//     with them, but what a row costs does not. It is not the measure,
//     though: joining runs one batch at a time, so it keeps one core on
//     the model where running alone keeps every core, and a mode that
//     costs less CPU a row can answer fewer rows (the fraud MLP at 8
//     callers on a quiet machine: 1.75 times the CPU a row alone, 10%
//     more rows). Where the cores cannot make up the difference (running
//     alone at more than GOMAXPROCS times joining's CPU a row, or joining
//     at no less than alone's), the CPU a row decides whatever the rates
//     say.
//   - Explorations are spaced in time so that they cost about 1% of the
//     rows (160 ms to 5 s apart): an exploration costs the time it spent
//     away times what the other mode lost by.
//   - While running alone wins (Stats.Joining false), a request that finds
//     the model busy runs alone in its caller's goroutine, beside the
//     others, as if unbatched (Stats.Alone); no run slot bounds those
//     runs, as nothing bounds unbatched ones. One of one row under a ctx
//     that can never end takes no lock either (but for one in 64, which
//     the cost model measures): with 256 callers of a conv net, each
//     holding an OS thread in the model, a caller that held the lock
//     could be off CPU for milliseconds while the others queued on it.
//   - Below capacity both modes answer what arrives, the rates tie, and
//     it stays where it is; in both modes a request that finds the model
//     idle runs at once.
//
// On one core (GOMAXPROCS 1, as each replica of bench/http-batch.sh, and
// as a Kubernetes pod with a one-CPU limit), a server's handlers of
// requests that arrived together are ready to run at once but run one at a
// time: none is ever on its way in Predict while another is, so every
// request would find the model idle and run alone. So while joining pays,
// a request that finds the batcher idle may gather company: it queues,
// yields (runtime.Gosched) so that the goroutines ready to run go first
// and queue behind it (the queues wait while it gathers, bounded by the
// max delay), then runs them all in its own goroutine, holding the run
// slot as it would have alone. The batcher measures what gatherings bring:
// while they bring at least one and a half requests on average it keeps
// gathering; below that (a lone caller) it runs lone requests directly
// and tries a gathering every 64 runs.
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
// A model panic becomes an Internal error, and is logged at ERROR with its
// stack through slog.Default (it never reaches the transport's recovery).
//
// A caller whose ctx ends returns at once. A queued request is then removed
// and never runs (Rejected.Canceled or Rejected.Deadline); a running one
// leaves its batch, whose other members still get their answers, and the
// run's own context is cancelled once no member is left waiting. Joined
// runs use the batcher's context, never one caller's. serving.ParamTimeout
// (µs), if present, bounds the request like a ctx deadline.
//
// # One request cannot hold a batch or the model hostage
//
// One member of a joined run can fail it (a row the model rejects, a
// panic) or hang it (a row that sends the model into a loop, an operator
// that never ends); and with one run slot, a hung run stalls everyone
// after it too. So:
//
//   - Every run has a time limit. A request's own limit is its deadline;
//     one without a deadline (no ctx deadline, no serving.ParamTimeout) is
//     given one at its first run, WithMaxRunTime later (default 10 s). A
//     run of one request gets that request's limit. A joined run gets half
//     the time its most urgent member has left, so that if it is stuck
//     there is time to run the others again; never less than four times
//     its expected run time (and 1 ms), so that a member that queued until
//     its time was nearly gone cannot make a healthy run look stuck and set
//     an overloaded model cancelling and splitting its runs.
//   - The scheduler ends a run that passes its limit (Stats.Ended): it
//     cancels the run's ctx, which the ONNX backend turns into ONNX
//     Runtime's terminate flag (the run stops at the next operator), and
//     gives the run slot back at once, with a new runner goroutine in the
//     place of the one stuck in the model. A model that ignores its ctx
//     keeps that goroutine (and a core) until it returns, but not the slot;
//     Close waits for it. A lone run of one row in its caller's goroutine
//     (the fast path) runs under its caller's own ctx, which the batcher
//     cannot cancel: at its limit it only gives its slot back, and the
//     caller's ctx (its deadline, an HTTP client gone) stops the run in the
//     model, as it would stop an unbatched call (see Performance).
//   - The members of an ended run still waiting run again, split in two
//     halves (Stats.Isolations); each half gets half of what is left, and
//     so on, so a stuck member is found in log2(n) rounds while each of
//     its neighbours is answered, in its own half, within the time it had.
//     Halves run before the queues, first in, first out, so a stuck half
//     never delays its sibling by more than its own limit. A member whose
//     own limit passed fails with DeadlineExceeded. The last suspect, alone,
//     runs outside the run slots (in a goroutine of its own, until its own
//     limit), so whatever it does, fresh requests run meanwhile.
//   - A joined run that fails with an error that may be one member's fault
//     (any code but Unavailable, ResourceExhausted, Canceled,
//     DeadlineExceeded) is halved the same way, without waiting: one
//     culprit among 64 members costs 1 + 2 × 6 = 13 runs (each member run
//     alone in turn cost 65), and only it fails.
//
// Measured with the tests in guard_test.go on a fake model and clock (issue
// 18, rows 9 and 10): of 64 members with one that hangs, the other 63 are
// answered within their deadlines, in at most 13 model calls, the culprit
// fails at its own limit, and fresh requests are answered while it is
// still stuck; one that fails costs 13 calls, not 65; a member that is
// slow but not stuck is answered.
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
// and stops the scheduler goroutine, then closes the model it wraps, which
// a Batcher owns (the rule on serving.Middleware), so the model is still
// open while the last batches finish; it is idempotent. Shutdown(ctx)
// drains instead, and leaves the model open for Close: everything queued
// runs at once; if ctx ends first, what is still queued fails with
// serving.ErrClosed, running batches are cancelled (a lone run of one row
// on the fast path, under its caller's own ctx, runs on until that ctx or
// the model ends it) and ctx's error is returned.
//
// # Observability
//
// Stats returns plain counters. Metrics (scope ScopeName, attributes model
// and version): servekit.batch.queue.duration (s, per request),
// servekit.batch.run.duration (s, per batch), servekit.batch.size ({row},
// per batch), servekit.batch.requests ({request}, per batch),
// servekit.batch.queue.depth (observable up-down counter, {row}, read at
// collection so that queuing costs no metric call) and
// servekit.batch.rejected ({request}, attribute reason = overloaded,
// canceled, deadline or closed; every reason's series starts at 0).
// Spans batch.queue (time queued) and
// batch.run (continuing the first member's trace, linking every member)
// are started only under a recording parent span, so untraced requests pay
// nothing for them. Recording allocates nothing.
//
// A request on a lock-free path (a lone one, whatever its ctx, or one that
// runs alone because joining does not pay) records nothing as it runs: the
// batcher counts those runs, and the callback that reads the queue depth
// at collection records each as what it was, a batch of one request of
// one row that waited 0 s in the queue (the SDK runs callbacks before it
// reads the histograms, so a collection sees every run before it; Close
// records the last ones). So servekit.batch.size, .requests and
// .queue.duration count every run and request, as before; only
// servekit.batch.run.duration leaves out the runs nobody timed: one such
// run in 64 takes the locked path and is timed (Stats.Untimed counts the
// others). A meter that drops what it is given (no SDK: Enabled false) is
// handed nothing.
//
// # Performance
//
// Per request, the queue path costs a lock, a hash of the batch key (the
// model, input names, datatypes and dims, outputs and parameters, hashed
// without building a string, and confirmed against the queue's head), a
// pooled item with its answer channel, and a goroutine park and wake-up.
// Per batch: one copy of the inputs into one joined tensor, zero-copy
// views of the answer (Tensor.Rows), and one lock to count the batch and
// pick the next.
//
// Measured with BenchmarkBatch and bench/http-batch.sh on the shared 2-core
// machine here (bench/README.md has the tables: three rounds, before and
// after side by side, under a load of 10 to 19 that makes single cells
// swing by 2×). Batched/unbatched rows per second, medians, with CPU per
// row unbatched/batched:
//
//	in-process   fraud MLP   8–256 callers  1.9–3.0×  (CPU 1.8–3.2×)
//	             wide MLP    8–256 callers  1.8–2.7×  (CPU 2.1–2.3×)
//	             conv net    64 callers     0.73× → 0.97×  (CPU 0.68× → 0.90×)
//	second pass (lock-free lone path, cost model on pooled rates and CPU
//	per row; load 7–10):
//	             fraud MLP   1 caller       CPU 0.90× → 0.94×
//	             conv net    64 callers     0.58× → 1.12×  (CPU 0.82× → 0.94×)
//	             conv net    8–256 callers  CPU 0.94–1.03× (alone 85–93%)
//	             fraud, wide 8–256 callers  2.1–3.2×  (CPU 1.8–3.4×)
//	HTTP, GOMAXPROCS 1
//	             wide MLP    8, 64 clients  1.9×      (CPU 1.8–1.9×)
//	             conv net    8–256 clients  1.3–1.5×  (CPU 0.9–1.1×)
//	             fraud MLP   1–256 clients  0.91–1.30× (CPU 0.94–1.16×)
//
// Earlier figures for this design's queue path (before adaptive mode
// measured throughput), 64 callers, on a quiet box: the fraud MLP 1.66×
// (379k rows/s, rows/batch 6.3 → 57, p99 2.2 → 0.45 ms); the wide MLP 17k
// rows/s = 81% of ideal (one goroutine running pre-formed batches of 64);
// with two intra-op threads (BenchmarkBatchVariants, batched-iop2) 31k
// rows/s = 2.95× unbatched and 74% of ideal-iop2. Under load a second
// intra-op thread fights other processes and loses.
//
// What stays out of reach for a model as small as the fraud MLP on 2
// cores, and why: its ideal is about 110 to 190 ns per row (a pre-formed
// batch of 64 in 7 to 12 µs), while each request through any queue costs
// at least a park and a wake-up of its goroutine (0.5 to 1 µs of CPU here,
// profiled), besides its caller's own work; so batched throughput is
// bounded by that per-request cost, about 5 to 10% of the ideal, not 85%.
// The "4× unbatched" target needs under about 0.6 µs of wall time per row
// on 2 cores, where the request path alone costs about 1.5 µs of CPU: we
// measured 1.5 to 3× depending on the load.
//
// A lone request pays what no batcher avoids, and little more: its one-row
// request, under any ctx, finds the batcher idle in one atomic load, takes
// the run slot with a compare-and-swap and gives it back with another.
// Under callgrind (BenchmarkLoneOverhead, GOGC=off, instructions per call
// from the difference between 40k and 80k calls) that is 238 instructions
// on top of the model's call (259 before the queue path moved out of
// Predict's frame; 1,309, measured otherwise, with two locks, two clock
// reads and four metric records before the fast path); under a cancellable
// ctx 326, against 3,433 on the locked path it took before (with its
// context.WithCancel). By the clock (BenchmarkLonePaired, median of the
// per-pair differences, three rounds, load 5 to 8): 90 ns on the fraud
// MLP's 2.6 µs (3%) under either ctx, where a cancellable one cost 670 to
// 1,040 ns (24%); 250 to 310 ns on the wide MLP's 80 µs (0.4%, was 1,360 to
// 1,860), 60 to 130 ns on the conv net's 30 µs (0.3%, was 700 to 1,650);
// with the batcher's metrics recorded by the OTel SDK, as a server's are
// (ctx=cancel-sdk, fraud MLP), 110 to 120 ns (3%), where the locked path
// cost 1,780 to 2,390 ns (54%): its four histogram records are now made at
// collection (see Observability). Since then the fast path runs the model
// from Predict's own frame (seventh pass): after a model's run each frame
// the answer returns through is cold in the caches and its return costs
// tens of ns, so the two frames taken out brought the fraud MLP's 80 to 90
// ns to 50 to 60 (2%; bench/README.md, "Seventh pass"). Whoever finds the
// slot taken meanwhile marks the batcher busy in the same word (fastBusy),
// so either the swap fails or the reader sees the run; a run that ends
// with that mark set takes the lock and starts what waits. The run still has a time limit: a
// request that waits for the slot starts its clock, and past the max run
// time the slot is given back (the run itself is its caller's, under its
// caller's ctx: see below).
//
// Nothing a lone caller does wakes the scheduler goroutine: its timer for
// a run's limit is kept after the run ends (later runs' limits fall after
// it), and a request sent on by the fast path only looks at the loose
// path's word while joining. Before, one of the two woke it for each lone
// run of the locked path (a futex wake-up and a thread switch of several
// µs; perf on BenchmarkBatch fraud c1: the batched cell's futex calls fell
// from 2.8–9.0k to 1.7–2.0k, unbatched's 1.4–2.3k).
//
// A request under a ctx that can end (an HTTP or gRPC request's) takes
// the fast path too. It took the locked path before, and through HTTP
// (bench/http-batch.sh, fraud MLP, one client, GOMAXPROCS 1) the batcher
// cost about 6 µs of a 150 µs request outside the model's call: 3.4 µs the
// SDK's records of the four per-request histograms, 1.3 µs the
// cancellable ctx the run was given (context.WithCancel under a request's
// ctx: an allocation, a walk up its chain, a place in its parent's
// children), about 1.4 µs the two locks, clock reads and the cost model.
// That made batching lose 3 to 9% at one client, where it can gain
// nothing. A run on the fast path is its caller's own call, under the
// caller's own ctx, as an unbatched call is: the backend stops it when
// that ctx ends (the ONNX backend's watcher sets ONNX Runtime's terminate
// flag), so the batcher does not wrap the ctx to be able to cancel it
// itself. What that gives up, by choice: the batcher does not end such a
// run at its limit, nor when Shutdown's ctx ends. At its limit (counted
// from when a request waiting for the slot first sees it, as for every
// fast run) it gives the slot back, so nobody waits behind it for more
// than the max run time, and the run goes on until the model returns or
// the caller's ctx ends (its deadline, a client that gives up, a server's
// Close, which cancels its requests' ctxs). So one request can still hold
// nobody hostage but its own caller, as it would unbatched, and a core, as
// a model that ignores its ctx does on any path; and Close waits for it,
// as for any run. A request with serving.ParamTimeout, or of several rows,
// or the one lone request in fastSample that is timed for the cost model,
// takes the locked path, where its run is cancelled at its limit.
//
// Through HTTP (bench/http-batch.sh, one client, six rounds in each tree,
// load 5.5 to 8.7, with another run of the same harness on the same CPUs
// part of the time), batched/unbatched medians went from 1.05, 0.86 and
// 1.04 (fraud, wide, conv) to 1.02, 1.03 and 0.98, with single rounds from
// 0.6 to 3.8× and a conv round at 0.02× in both trees: on this machine the
// harness cannot resolve the 1 to 4% it was meant to show. A CPU profile
// of the batched one-core server at one client (fraud) puts the batcher at
// about 0.5% of the server's CPU (Batcher.Predict less the model's call),
// and nothing else differs from the unbatched server's chain with
// -max-inflight=-1.
package batch

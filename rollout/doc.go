// Package rollout routes one model's traffic between its versions: hot
// replace, canary weights with sticky keys, blue-green switch and rollback,
// and staged plans guarded by live numbers.
//
// Reach for Router first: New, then Put a Predictor per version. A Router
// is a serving.Predictor, so it goes where a model would; it is also
// serving.Versioned, so serving/httpapi serves every version it holds
// (/v2/models/{m}/versions/{v}/...) once the router is registered:
//
//	r, err := rollout.New("fraud")
//	defer r.Close()
//	perVersion := serving.Chain(c.Middleware(), batch.Middleware()) // c: a *cache.Cache
//	r.Put("1", perVersion(blue))                                     // the first takes 100 %
//	r.Put("2", perVersion(green))                                    // later ones join at 0 %
//	h.Handle("fraud", telemetry.New(r))                              // h: an *httpapi.Handler
//	r.SetWeights(map[string]float64{"1": 95, "2": 5})               // canary
//	r.Switch("2")                                                    // blue-green
//	r.Rollback()                                                     // back to 95/5
//
// The composition is telemetry → router → per version: cache → batch →
// model. Caches and batchers go below the router, one per version, because
// a cache above it cannot know which version will answer; telemetry goes
// above, and labels its metrics with Response.Version, which the router
// always sets to the version that really answered.
//
// Everything on a Router is safe for concurrent use. Requests read an
// immutable routing table through an atomic pointer and take no lock;
// changes (Put, Remove, SetWeights, Switch, Rollback, plans) are
// serialised by one mutex and publish a new table, so a request sees a
// change completely or not at all.
//
// # Versions and hot replace
//
// Put adds a version, or replaces the Predictor of one already held (a
// reload). Each version's Predictor is reference counted: the router holds
// one reference while it is current, each request one while inside. A
// replace or Remove swaps the version's Predictor and drops the router's
// reference; whoever drops the last one closes it (serving.Close). So
// requests in flight finish on the Predictor they started on, no request
// ever reaches a closed Predictor, and each is closed exactly once. Remove
// and Close wait for requests in flight (Remove bounded by its ctx).
//
// # Routing
//
// A request with Request.Version set is pinned to that version (the
// /versions/{v} URL and the X-Model-Version header set it): an unknown
// version is NotFound, one not ready is Unavailable. Other requests are
// routed by weight. Weights are percentages in steps of 0.1 % summing to
// 100, kept as integer units of 0.1 %.
//
// Sticky keys: a request with Request.Key (a user or session id, from the
// X-Routing-Key header) lands on a fixed point among 1000 cells: FNV-1a
// (64 bit) of the model name, a zero byte and the key, through the
// SplitMix64 finaliser, scaled to [0, 1000). Versions own consecutive runs
// of cells in version order (decimal names by value, then the others by
// bytes), each as many cells as its weight in units. The order depends on
// the names alone, so two routers with the same weights assign every key
// identically, across replicas and restarts, whatever order they loaded
// versions in. When a canary's weight only grows (and no other version's
// grows), the versions before it can only shrink and those after it too,
// so its run of cells only widens: a key on the canary stays there. A
// request without a key draws its point at random, so it splits by weight
// but may land on a different version each time.
//
// Readiness: routed traffic never reaches a version that is not ready
// (serving.IsReady, checked per request). A request whose point belongs to
// such a version goes to the ready version with the most weight (ties: the
// first in version order), and is counted in servekit.rollout.fallbacks;
// its key returns to its own version once that is ready. If no version
// with weight is ready the request fails with Unavailable: the router does
// not send traffic to a version given 0 %. SetWeights refuses an
// assignment with no ready version while one is ready, and Switch a
// version that is not ready.
//
// # Blue-green and Rollback
//
// Switch(v) gives v 100 % in one table swap. Every change of weights
// (SetWeights, Switch, a whole plan) keeps the assignment before it, up to
// 32 deep; Rollback restores the last one kept, instantly, and calling it
// again steps further back. A change that changes nothing is not kept.
// Remove forgets kept assignments that give the removed version weight.
//
// # Plans and guards
//
// Start runs a Plan, a staged canary as Argo Rollouts' steps: the canary
// takes each step's weight (the stable version the rest), holds it while
// every Guard holds, and takes 100 % after the last step. Guards are asked
// every Plan.Interval; the first that fails rolls back at once: the
// assignment from before the plan comes back, with the canary's weight on
// the stable version, and PlanStatus records the state rolled_back, the
// guard's error as the reason and the time. A guard that cannot judge yet
// (ErrInconclusive, e.g. MinRequests) holds the step where it is. Pause,
// Resume, Abort and Promote steer the active plan; a manual SetWeights,
// Switch or Rollback aborts it (the operator takes over). Guards are
// called without the router's lock, in the goroutine of the plan's timer;
// the timer belongs to the router and stops on Close and Abort. Timing
// comes from a Clock (WithClock): tests step it by hand with
// rollouttest.Clock, so plans are tested without sleeping.
//
// Plan semantics, as an Argo Rollouts or Flagger user would expect them:
// the stable version defaults to the one with the most weight; steps may
// not lower the canary's weight (a sticky key would move back); a step
// advances at the first passing check once its hold has passed; the
// counts a guard judges start with the step, so each step is judged on
// its own traffic. A canary that is not ready holds the plan (its share is
// served by the stable version meanwhile). Paused, a plan keeps checking,
// and a failing guard still rolls it back; Resume restarts the step.
// Abort puts traffic back on the stable version; Promote gives the canary
// 100 % at once (a full promotion). A guard that overruns
// Plan.GuardTimeout is inconclusive (a slow metrics backend must not roll
// a good canary back); one that panics fails.
//
// Ready-made guards judge the Snapshot: MinRequests, MaxErrorRate,
// MaxErrorRateIncrease (vs the stable version), MaxP99 and MinAgreement
// (the shadow comparison of a mirror to the canary, below). MinQuality
// and MaxLoss judge model quality since the plan began (PlanStarted)
// through a QualityFunc, a function another component provides — package
// quality's Monitor.CompareFunc compares the two versions' AUC, F1, log
// loss… on the labelled requests both answered (a mirror makes the canary
// answer the stable's), so a canary worse on the ground truth rolls back;
// rollout imports no monitor. GuardFunc adapts anything else: a
// Prometheus query, or another component's numbers, such as a drift
// monitor's.
//
// # Shadow
//
// A Shadow mirrors a sample of a primary's requests to a challenger and
// compares each pair of answers, without the primary's callers noticing.
// On a Router, Mirror(v, percent) mirrors routed traffic to version v
// (requests v answers itself, and requests pinned to a version, are not
// mirrored; mirrors reach v through the router's reference counting but
// not its Stats), StopMirror ends it, Status().Shadow and the guards'
// Snapshot.Shadow show the comparison. Outside a router, NewShadow and
// Shadow.Middleware put one in front of any Predictor; closing that layer
// closes the primary it wraps, never the Shadow or its challenger, which
// their maker closes after the chains (the rule on serving.Middleware).
// The seed's
// sequence on one router:
//
//	r.Mirror("2", 100)                      // shadow: compare before any user sees 2
//	r.Start(rollout.Plan{Canary: "2",       // gradual shift, judged by the comparison
//		Steps:  []rollout.Step{{Weight: 1, Hold: time.Minute}, {Weight: 5, Hold: time.Minute}, {Weight: 25, Hold: time.Minute}, {Weight: 50, Hold: time.Minute}, {Weight: 100}},
//		Guards: []rollout.Guard{rollout.MinAgreement(0.98, 500), rollout.MaxErrorRate(0.01)}})
//	r.Switch("1")                           // blue-green, at once
//	r.Rollback()                            // undo the switch
//
// Off the path. After the primary answers, the layer copies the request
// (deep: the caller may reuse its buffers once Predict returns) and the
// primary's outputs, takes a place among WithMaxMirrors running plus
// WithMirrorQueue waiting mirrors (one atomic counter; when none is free,
// or the Shadow is closing, the request is dropped and counted: the
// primary never waits), puts the mirror on a buffered channel, and returns
// the primary's own answer and error, untouched. It starts no goroutine
// and wakes none: a goroutine start or a channel receiver's wake-up costs a
// scheduler wake-up, often a system call, and the caller would pay it (in
// BenchmarkShadowOverhead it tripled the primary's p99). Instead the Shadow's
// dispatcher goroutine polls the queue every millisecond (the whole cost
// of an idle Shadow) and starts a runner goroutine per mirror, up to
// WithMaxMirrors; a runner takes the next queued mirror itself when it
// finishes, so a busy shadow does not wait for the tick. A runner asks the
// challenger under context.WithoutCancel of the request's context (its
// values, such as the trace, stay; its end does not) with
// WithMirrorTimeout, which starts when the mirror runs; a panic is
// recovered and counted (the first logged with its stack), an answer
// after the deadline counts as timed out. A runner is held until the
// challenger returns, even past the deadline, so a challenger that ignores
// its context cannot pile up goroutines: the queue fills and new mirrors
// are dropped instead. Requests the primary failed with Canceled are not
// mirrored (the caller left: that says nothing about either model).
// Shutdown(ctx) stops mirroring and lets the admitted mirrors run while
// ctx allows; Close drops the queued ones and waits for the running ones,
// at most the mirror timeout and a second more.
//
// Measured (BenchmarkShadowOverhead: the fraud model on ONNX Runtime,
// 4–8 µs a call, on a shared 2-core VM under heavy load; each cell against
// the bare primary in the same moments; medians of 6 runs): with a 100 %
// shadow the primary's p50 is 1.03–1.04× when nothing can be mirrored (a
// hanging challenger holds every runner) and 1.12–1.14× when 55–70 % of
// requests are (about 0.5 µs of copies and a channel send per mirrored
// request); p99 is 1.46–1.59× for an erroring or panicking challenger
// against 1.00–1.37× (runs span 0.78–2.24×) for the hanging one, the
// machine's noise; a healthy challenger, competing for the two cores,
// 1.8–2.3×. Starting a goroutine per mirror on the caller's path instead
// gave 2–3.8× p99 for an instantly failing challenger while mirroring only
// 8–17 %. The README has the table.
//
// What is compared, per output the primary answered (by name), over every
// pair where both sides answered:
//
//   - Rules. Auto (the default) picks from the primary's output: Exact for
//     BYTES, BOOL and integers; for floating point, Argmax when the rank is
//     2 or more and the last dimension at least 2 (classes), else
//     Threshold(0.5) (a score per row). Argmax makes one decision per row
//     (the slice along the last axis), agreed when both pick the same class
//     (the first of equal maxima; NaN never wins). Threshold(t) makes one
//     per element, positive when ≥ t. Tolerance(abs, rel) one per element,
//     agreed when |p−c| ≤ abs + rel·|p| (NumPy's isclose, the primary as
//     reference), the rule for regressors and embeddings. Exact one per
//     element, equal values (two NaNs are equal) or bytes. WithComparison
//     sets a rule per output; ParseComparison reads the names String
//     writes ("threshold(0.7)", "tolerance(0.001,0.01)").
//   - Agreement is agreed decisions over decisions, summed over all pairs,
//     so a batched request weighs as many rows as it has. An output the
//     challenger did not answer comparably (missing, invalid, another
//     shape, BYTES against numbers) is Mismatched: all its decisions count
//     as disagreed, and no difference is measured.
//   - Differences of numeric outputs are element-wise, in float64 (so an
//     FP16 or INT8-dequantised challenger compares with an FP32 primary):
//     MaxAbsDiff = max |p−c|; MaxRelDiff = max |p−c| / max(|p|,|c|), which
//     is symmetric, within [0, 2] and 0 when both are 0; MeanAbsDiff = sum
//     |p−c| / Elements. Elements where exactly one side is NaN or infinite
//     (or the two are unequal infinities) are counted in NonFinite and left
//     out.
//   - Latency: p50 and p99 of each side over the completed mirrors, the
//     primary's as its caller saw it, the challenger's from call to
//     answer, from the same fixed-memory histogram as Stats.
//   - Errors: each side's errors by code among completed mirrors (a timeout
//     is deadline_exceeded, a panic internal), ErrorRate = errors /
//     completed, and ErrorRateDiff = challenger's − primary's.
//   - Counts: Sampled, then Mirrored or Dropped; Completed, of which
//     TimedOut, Panicked, and Pairs (compared).
//
// A Shadow's memory is fixed whatever the traffic: the figures are kept
// per primary model and version (at most 64; the rest share an "other"
// entry), each about 5 KiB. Snapshot sums them; the metrics keep them
// apart. The metrics are observable counters and gauges read at
// collection from the same numbers as Snapshot (so a guard and a dashboard
// agree), plus one histogram recorded by the mirror goroutine, all with
// attributes model, version (the primary's; empty when it failed) and
// challenger_version: servekit.shadow.sampled, .mirrored, .dropped,
// .completed, .timeouts, .panics, .pairs, .errors (side, code),
// .decisions (output, agreed), .agreement, .diff.abs.max, .diff.rel.max,
// .diff.abs.mean (output), .duration (side: primary, shadow; seconds) and
// .in_flight (challenger_version only).
//
// The servers servekit stands in for do not compare a shadow's answers as
// they serve: where traffic is mirrored (a service mesh in front of
// KServe, Seldon's shadow deployments), the comparison is left to logs and
// offline jobs. Comparing in the server, per output, with rules chosen
// from the output's shape, makes the shadow's verdict a number a plan can
// wait for.
//
// # Admin API
//
// Package admin serves the routers over HTTP for operators: status,
// weights, switch, rollback, plans and mirrors, behind an Authorizer.
//
// # Stats and metrics
//
// Each version keeps, with atomics on the request path, its requests by
// outcome code, the requests inside it, and a sliding window (one minute by
// default, WithStatsWindow) of counts and a log-linear latency histogram
// (8 buckets per power of two, fixed memory) for p50 and p99. Status shows
// them, guards judge them, and the Router exports the same numbers as
// observable OpenTelemetry instruments read at collection (WithMeterProvider,
// default the global provider), with attributes model and version:
// servekit.rollout.requests (and code), .fallbacks, .inflight, .weight,
// .latency (and quantile) and .plan.step. An error counts as a failure
// for error rates only when its code is a server-side one (IsFailure).
//
// # Cost
//
// BenchmarkRoute puts the router in front of a model that answers with a
// constant, so the difference is the router's own work, measured as CPU
// time per request (cpu-ns/op: on the shared 2-core VM it was measured on,
// at a load average near 28, wall time per op swung tenfold; CPU time
// still varied by about a third). Bare model 3 ns; pinned 190-220 ns,
// without allocation; keyed or unkeyed 320-460 ns and one allocation of
// 128 B, the copy of the Request that carries the chosen version (the
// caller's Request is never modified). From two goroutines at once:
// pinned 210-280 ns, keyed 470-730 ns (the reference count and the stats
// counters are cache lines every request writes).
//
// # Other decisions
//
// Put takes ownership of a Predictor (unless it returns an error) and
// closes it; Close closes every version once, after its requests in
// flight. A Remove of a version with weight is refused while other
// versions remain, as is one of a version in the active plan: the router
// does not guess where traffic should go. Rollback with nothing to restore
// is an InvalidArgument error. A version that panics answers Internal (and
// counts as a failure), so a crashing canary is rolled back, not the
// process taken down. Version names are 1-256 bytes of UTF-8 without '/',
// spaces or control characters, as they appear in URLs, metric labels and
// logs.
package rollout

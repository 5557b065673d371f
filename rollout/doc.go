// Package rollout routes one model's traffic between its versions: hot
// replace, canary weights with sticky keys, blue-green switch and rollback,
// and staged plans guarded by live numbers.
//
// Reach for Router first: New, then Put a Predictor per version. A Router
// is a serving.Predictor, so it goes where a model would; it is also
// serving.Versioned, so serving/httpapi serves every version it holds
// (/v2/models/{m}/versions/{v}/...) once the router is registered:
//
//	r := rollout.New("fraud")
//	defer r.Close()
//	perVersion := serving.Chain(c.Middleware(), batch.Middleware()) // c: a *cache.Cache
//	r.Put("1", perVersion(model1))                                   // the first takes 100 %
//	r.Put("2", perVersion(model2))                                   // later ones join at 0 %
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
// MaxErrorRateIncrease (vs the stable version) and MaxP99. GuardFunc
// adapts anything else: a Prometheus query, or another component's
// numbers, such as a shadow comparison's agreement rate (see Guard).
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

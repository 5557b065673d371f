// Package quality tracks how good a model's answers are: it remembers
// each prediction by request id, joins the labels that arrive later, and
// reports per window and per model version the realized metrics; with a
// labelled reference it also estimates them before any label arrives
// (confidence-based performance estimation, CBPE), so a drop shows while
// the labels are still weeks away. Change detectors watch the error rate
// as labels flow; alarms with hysteresis raise alerts; the metrics are
// OpenTelemetry gauges; rollout guards compare a canary with the stable
// version on the same labelled requests; an HTML section draws it all.
// Drift says the inputs moved; this package says whether that hurt.
//
// Reach for NewMonitor, its Middleware and LabelsHandler:
//
//	ref, _ := quality.ReadReference("models/fraud/1/quality_reference.json")
//	qm, _ := quality.NewMonitor(quality.WithReference(ref),
//		quality.WithWindow(quality.CountWindow(1000)),
//		quality.WithLabelDelay(24*time.Hour),
//		quality.WithAlertFunc(notify))
//	defer qm.Close()
//	p := serving.Chain(telemetry.Middleware(), qm.Middleware(), c.Middleware(), batch.Middleware())(model)
//	mux.Handle("POST /v2/models/{model}/labels", qm.LabelsHandler())
//	mux.Handle("GET /monitoring", report.Handler(report.Drift(mon), report.Quality(qm)))
//
// A Reference is built once from held-out labelled data the model was not
// trained on (ReferenceBuilder: the scores the model gave and the true
// labels), and ships beside the model version (ReferenceFileName). A
// model without one is watched with WithTask: realized metrics only.
//
// Package drift holds the data checks (data quality, multivariate drift),
// since they need its reference profile of the inputs; this package holds
// what needs the answers and the labels. It imports serving and rowio
// (the project's file layer, for label and prediction files) and no other
// middleware, so either may be used alone; package report draws both on
// one page.
//
// # Predictions, ids and labels
//
// The middleware keys each answer on the version that really answered
// (Response.Version, else Request.Version) and reads the task's output
// (Task): a binary classifier's positive score, a multiclass
// classifier's row of class scores, or a regression value. A prediction
// is named by its request's id, and row r of a request of several rows by
// "<id>/<r>"; a request without an id still counts toward the estimates,
// but no label can reach it. Labels arrive by Label (Go), LabelsHandler
// (POST a batch of {"id", "label"}), or ReadLabels (a JSONL, CSV or
// Parquet file through rowio); ReadPredictions takes a batch/job output
// in, so offline predictions are judged the same way. A label reaches
// every remembered prediction of its id — under a shadow, both versions'
// — and a later label for the same id replaces it. Bad input is refused
// whole with a clear error (HTTP 400/404/413 with {"error": ...}) and none
// of it is taken, so a corrected batch can be sent again.
//
// # Memory
//
// Each model's predictions are remembered in a ring of fixed slots, at
// most WithMemory's count and age: SlotBytes (48) plus 8 per score, and
// 32 to 64 bytes in an open-addressing index of id hashes (a table a
// quarter to half full) — 90 to 120 bytes a binary prediction, measured
// (TestBytesPerPrediction). Past the cap the oldest are forgotten and
// counted (Stats.Evicted, Stats.Expired); a label for one then counts as
// unmatched. Ids are kept as 64-bit hashes (maphash, seeded per monitor):
// two ids collide with odds of about n/2⁶⁴ per label. Size the memory to
// the request rate times the label delay.
//
// # Replicas
//
// Each replica remembers the predictions it answered, so a label joins
// only where its prediction was made: post every label to every replica
// (a label for an id a replica never saw counts as unmatched there and
// costs a lookup), or route it by the id the way requests were routed.
// Unlike drift's windows, quality windows are not exported for merging:
// realized metrics need the rows, not summaries.
//
// # Windows
//
// A model version's predictions are cut into tumbling windows by count or
// by time (CountWindow, TimeWindow). When a window closes its estimate is
// computed and judged; its realized metrics are recomputed as labels
// arrive (checked every WithRefresh; once its labels grew by a tenth, so
// a window labelled over hours costs tens of recomputations, not one a
// second; Flush recomputes at once) and become final — settled, judged —
// WithLabelDelay after the window ended, as soon as every remembered
// prediction of it is labelled, or just before its predictions start to
// be forgotten. Each Result carries, per metric, the reference value, the
// estimate with its band, the realized value, the bounds and verdicts,
// with the window's label coverage and label delay distribution.
//
// # Metrics
//
// Realized, from the labels, exactly as scikit-learn 1.2 computes them
// (testdata/golden/gen.py; every metric within 1e-9, the largest
// difference seen 1.8e-15):
//   - binary: accuracy, precision, recall, F1 (the positive class: a score
//     at or above Task.Threshold), ROC AUC (ties half: the trapezoid),
//     log loss (probabilities clipped to [ε, 1−ε], ε = 2⁻⁵²), Brier score,
//     and calibration error: the expected calibration error over 10
//     equal-width bins of the score, as calibration_curve bins them;
//   - multiclass: accuracy, macro precision, recall and F1 over the
//     classes present (zero_division 0), one-vs-rest macro AUC (defined
//     once every class occurs), log loss (rows renormalised), and the
//     top-label calibration error;
//   - regression: MAE, RMSE, MAPE (|y| floored at ε) and R².
//
// A metric that is undefined on a window (precision with no positive
// prediction, AUC with one class) is left out rather than reported as 0.
// A prediction whose score is NaN or infinite is counted (Window.Invalid,
// the "invalid" check) and left out of every metric.
//
// # Estimates without labels: CBPE
//
// After NannyML's confidence-based performance estimation: if the scores
// are calibrated probabilities, a prediction of the positive class with
// probability p is a true positive with probability p and a false one
// with 1−p, so a window's expected confusion matrix — and accuracy,
// precision, recall and F1 from it — needs no label. The expected ROC
// curve ranks rows by the model's score and counts each as p positive
// and 1−p negative; expected log loss and Brier score weigh each outcome
// by p. Multiclass classes are estimated one against the rest, their
// calibrated probabilities renormalised to sum to 1. Scores are
// calibrated on the reference (Calibration): by default (Auto) isotonic
// regression, when it lowers the calibration error on 3 held-out folds,
// as NannyML decides; or Platt's sigmoid; both fitted in Go and checked
// against scikit-learn (isotonic exactly, Platt's optimum within 1e-9).
//
// Each estimate has a band: ±WithBand (3) standard errors, which NannyML
// calls the sampling error — how far the realized value of a window of
// that size may fall from the expectation by chance alone. The standard
// error is σ/√m: σ the standard deviation of the per-row values the
// metric averages on the reference (correct or not; over the predicted
// positives for precision, the actual positives for recall), m how many
// rows it averages in this window (its predicted positives, its expected
// positives); DeLong's placements for AUC; the root of summed variances
// over the classes for macro averages. CBPE holds while P(y|x) does not
// change (covariate shift) and the inputs stay where the reference saw
// them; it cannot see concept shift, which only labels reveal.
// TestCBPETracksCovariateShift moves the inputs of a known binary world
// back and forth across its decision boundary, the accuracy of its windows
// from 0.63 to 0.85: every realized metric of every window falls within
// its estimate's band (56 of 56). TestConceptShiftFlaggedOnlyWithLabels
// changes P(y|x) instead: no estimate breaches and no alarm rises while
// the labels are out; once they arrive the realized metrics breach, and
// the "divergence" check — realized outside the estimate's band, at the
// labelled sample's size — names the likely cause.
//
// # Checks, alarms and alerts
//
// Each window is judged on checks: "estimated <metric>" when it closes,
// "realized <metric>" and "divergence" when it settles (both need
// WithMinSamples: 100 predictions or labels), "invalid" (non-finite
// scores), and "change <detector>". A metric is judged (WithAlarmMetrics,
// by default accuracy, F1, AUC, log loss, MAE, RMSE) against a bound: by
// default the reference value less (more, for a loss) WithBand standard
// errors at the window's size — a drop chance alone would not explain —
// or a fixed WithThreshold. As drift does, an alarm is raised after
// WithHysteresis' 2 consecutive breaching windows and cleared after 3
// clean ones, and each change makes one Alert for every WithAlertFunc,
// which must return at once. The module has one alert path: package
// webhook delivers these alerts as it does drift's (its Send takes any
// value with an IdempotencyKey), with the same retries, backoff and
// counters:
//
//	hook, _ := webhook.New("http://retrain.internal/hooks/quality")
//	quality.WithAlertFunc(func(a quality.Alert) { hook.Send(a) })
//
// Status says what is in alarm, and Status.Err wraps ErrDegraded.
//
// The change detectors read, as labels arrive, each prediction's error
// (0 or 1 for a class; the absolute error over the reference's MAE for
// regression): Page–Hinkley (fast for an abrupt rise) and ADWIN (adaptive
// window, slow drifts too). A detected rise raises "change <detector>"
// at once with what the error rose from and to; it clears after
// WithChangeHold labels without another. In TestChangeDetectors an error
// rate going from 10% to 50% is found within 56 (ADWIN) and 92
// (Page–Hinkley) labels.
//
// # Rollouts
//
// Compare measures a metric of two versions since a time: Paired on the
// labelled requests both answered (a shadow's mirrored requests carry the
// same id), Realized on each one's own, or Estimated. CompareFunc has the
// shape of rollout.QualityFunc, so a canary worse on labelled traffic
// rolls back without either package importing the other:
//
//	rollout.MinQuality("AUC", qm.CompareFunc(quality.AUC, quality.Paired), 0.02, 300)
//
// and Status gives a one-line guard as drift's does:
//
//	rollout.GuardFunc(func(_ context.Context, s rollout.Snapshot) error {
//		return qm.Status(s.Model, s.Canary.Version).Err()
//	})
//
// # Telemetry
//
// With WithMeterProvider (default the global one) the monitor exports, as
// observable instruments read at collection time: servekit.quality.
// estimated, estimated_lower, estimated_upper and reference (attributes
// model, version, metric) of the last closed window;
// servekit.quality.realized of the newest window with enough labels;
// label_coverage of the newest settled window; label_delay (quantile
// 0.5, 0.9, 0.99) in seconds; alarm (model, version, check); and the
// counters predictions, labels (outcome matched or unmatched), forgotten
// (reason evicted or expired), dropped and changes (detector).
//
// # Report
//
// Monitor.Report snapshots the windows, alarms and alerts; package report
// draws them (report.Quality) — per version, each judged metric over
// recent windows (estimate, band, realized, reference, bound), the
// windows' coverage and delay, the detections, the alerts — beside
// drift's part of the page.
//
// # Concurrency and cost
//
// A Monitor is safe for concurrent use. The middleware never slows or
// fails a request: it copies the scores and hashes the id into a buffer
// under a short lock; a worker goroutine the monitor owns takes the
// buffer in batches (one clock read per batch: a prediction's time is
// when the worker takes it in, milliseconds after its answer) and does
// everything else. A full buffer (WithQueue) drops the request and counts
// it.
//
// Measured on the shared 2-core Xeon here, loaded (load average 17), per
// single-row request with an id: best / median of 5 runs (go test -bench
// . ./quality; the machine's noise is larger than the differences):
//
//	BenchmarkObservePath/request          53 / 95 ns    the middleware, on the caller's goroutine
//	BenchmarkObservePath/worker, 16,384   141 / 158 ns  the worker: stamp, window, ring, index
//	BenchmarkObservePath/worker, 262,144  105 / 181 ns  the same, ring and index beyond the caches
//	BenchmarkObserve, end to end, CPU     +155 / +130 ns (memory 16,384), +255 / +240 ns (262,144) over the model alone
//	BenchmarkLabel                        122 / 134 ns  a label joined, detectors on
//	BenchmarkWindow, 1,000 predictions    205 / 210 µs  a window's estimate and realized metrics, once each
//
// The index's cache misses dominate a memory beyond the caches: the
// worker touches a batch's index entries before working through it, so
// they overlap. Label decoding allocates 3.3 bytes per body byte
// (TestLabelsHandlerAllocation).
package quality

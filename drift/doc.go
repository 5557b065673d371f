// Package drift watches a model's traffic for data and prediction drift:
// it compares each window of live requests with a reference profile of the
// model version — feature by feature, and all numerical features together
// (multivariate drift) — checks the data's quality, raises alerts that can
// trigger retraining (package webhook sends them), and exports the
// statistics as OpenTelemetry gauges. The statistics are SciPy's and follow
// Evidently's defaults. Whether a drift hurt the model's answers is package
// quality's question; package report draws both on one HTML page.
//
// Reach for NewMonitor and its Middleware:
//
//	prof, _ := drift.ReadProfile("models/fraud/1/drift_profile.json")
//	hook, _ := webhook.New("http://retrain.internal/hooks/drift")
//	defer hook.Close()
//	mon, _ := drift.NewMonitor(drift.WithProfile(prof),
//		drift.WithWindow(drift.CountWindow(1000, 0)),
//		drift.WithAlertFunc(func(a drift.Alert) { hook.Send(a) }))
//	defer mon.Close()
//	p := serving.Chain(telemetry.Middleware(), mon.Middleware(), c.Middleware(), batch.Middleware())(model)
//	http.Handle("/drift", report.Handler(report.Drift(mon)))
//
// Build the profile once from training data with a ProfileBuilder (Add, a
// CSV or JSON Lines file, or recorded requests), save it beside the model
// version (ProfileFileName), or let the monitor learn it from the first live
// requests (Monitor.Learn). The middleware keys each answer on the version
// that really answered (Response.Version, which a rollout router sets; else
// Request.Version), so it may sit above or below the router: every model
// version is compared with its own profile, or with its model's profile of
// version "" when it has none.
//
// # Concurrency and the request path
//
// A Monitor is safe for concurrent use. The middleware never
// slows or fails a request: after the model answers, it copies the watched
// values (so the caller may reuse its buffers) into a record and offers it
// to a bounded queue (WithQueue); when the queue is full the record is
// dropped and counted (Stats.Dropped, servekit.drift.dropped). A worker
// goroutine owned by the Monitor takes records in, bins them, evaluates
// windows and calls the alert functions; its state needs no lock. Status,
// Results, Alerts and the report read what the worker published after each
// window. Close stops the worker; closing a serving chain closes the
// middleware layer and the model below it, never the Monitor, which is
// shared by the models it watches and closed by its maker. Observing costs about 30 ns of CPU per feature value, binning
// included (see Correctness and performance).
//
// # Profiles
//
// A Profile holds, per feature (FeatureProfile):
//   - numerical: the fine bins, whose edges are the reference's percentiles
//     0, 1, …, 100 (NumPy's default interpolation, repeats removed), with
//     the count and sum of the values in each; the coarse bins, bounded by
//     the deciles; the mean, standard deviation, minimum and maximum; and
//     every value, sorted, when there are at most WithValueLimit (1000) of
//     them. A feature with at most 5 distinct values is Discrete: its bins
//     are its values, as Evidently treats such columns as categories.
//   - categorical: the WithMaxCategories (50) most frequent values, exactly
//     counted, and an "other" bucket for the rest and for values the
//     reference never saw; the rest are listed (Rare, up to MaxRare), so
//     a value the reference never had can be told from a rare one.
//
// FeaturesOf lists the features of a model from its metadata, as Evidently
// maps a DataFrame: a feature per input column (skl2onnx's per-column
// [N, 1] inputs by their names, the columns of an [N, k] input as
// name_0 … name_{k-1}) and per output of one value per row. STRING and BOOL
// columns, and integer outputs (a classifier's label), are categorical:
// their values are categories, never numbers to parse.
//
// With WithMultivariate the profile also holds a multivariate reference
// (PCA, below). The format is versioned (ProfileFormat, now v2; v1 files,
// without rare categories or a multivariate reference, still load).
//
// NaN and infinite numerical values, and text that is not a number, are
// counted as missing and left out of the statistics. Features name their
// Source: a column of a 2-D input, a whole input, an output column, or an
// output's argmax (the predicted class). DecodeProfile refuses unknown
// formats and fields and checks every count, edge and value against the
// others, so a monitor never runs on an inconsistent file.
//
// # Windows and memory
//
// Traffic is cut into windows by rows or by time (CountWindow, TimeWindow),
// tumbling, or sliding by a step that divides the size; a sliding window is
// kept as size/step panes (at most MaxPanes). Per feature and pane the
// monitor holds a fixed state, whatever the traffic:
//   - numerical: 16 bytes per fine bin (count and sum; 102 bins for a
//     continuous feature) plus 8 bytes per value kept for exact tests, up to
//     WithExactLimit (1000): 9,792 bytes with the defaults, 1,792 with
//     WithExactLimit(0);
//   - categorical: 8 bytes per category and "other": 568 bytes for 50.
//
// Add one merged state per model version and the queue (WithQueue records of
// 8 bytes per row and feature). A window keeps its values only while it
// holds at most the exact limit; beyond it, its statistics come from the
// histograms.
//
// # Statistics
//
// Each window computes, per feature (Value, with Bound the most a
// histogram-based value can differ from the raw-sample one):
//   - KS: the two-sample Kolmogorov–Smirnov statistic D, the largest gap
//     between the empirical CDFs, and its two-sided p-value exactly as
//     scipy.stats.ks_2samp(method="auto"): the exact distribution when both
//     samples have at most 10,000 values, else kstwo.sf(D, round(n·m/(n+m))).
//     On the raw samples when the reference and the window keep theirs;
//     otherwise D is taken at the fine-bin edges (which is ks_2samp of the
//     bin indices), a lower bound of the raw D that is at most the largest
//     bin share above it (Bound), with the larger, conservative p-value.
//   - chi_square: Pearson's chi-square on the 2×K table of reference and
//     window counts per category (per value of a discrete feature), as
//     scipy.stats.chi2_contingency(correction=False); empty columns are left
//     out. Yates' correction is not applied, also for 2×2: it makes the test
//     conservative for no benefit at the sample sizes a verdict needs, and
//     without it the 2×2 test is the two-proportion z-test Evidently uses
//     for binary features.
//   - psi: the population stability index, Σ (r−c)·ln(r/c) over the coarse
//     bins (deciles of the reference, open at both ends) or categories, an
//     empty share replaced by 0.0001 (Evidently's epsilon; not renormalised).
//   - jensen_shannon: the Jensen–Shannon distance (the square root of the
//     divergence) in base 2, so it lies in [0, 1]; SciPy's jensenshannon
//     defaults to the natural log, which gives √ln2 ≈ 0.83 times as much. Over
//     the coarse bins or categories.
//   - wasserstein: the Wasserstein-1 distance over the reference's standard
//     deviation (at least 0.001), Evidently's normed Wasserstein: in
//     reference standard deviations, how far the distribution moved. On the
//     raw samples when kept, else with each value moved to its fine bin's
//     mean, within Bound (half the share-weighted bin widths of both sides).
//   - hellinger: the Hellinger distance ‖√p − √q‖/√2, in [0, 1], over the
//     coarse bins or categories.
//   - linf: the largest change of one category's share (categorical and
//     discrete features).
//
// The deciding statistic (FeatureResult.Method) follows Evidently: a test
// while the smaller of the reference and the window has at most
// WithLargeSample (1000) values — KS for numerical features, chi-square for
// categorical and discrete ones — and above it a distance, normed
// Wasserstein or Jensen–Shannon: with large samples every test flags shifts
// too small to matter, so the verdict turns to effect size. WithStatistic
// overrides the choice. Defaults: drift when a test's p-value is below 0.05
// or a distance at or above 0.1 (WithThreshold).
//
// The p-values of the features judged by a test in one window are corrected
// together (WithCorrection): Bonferroni by default, so the chance of any
// false alarm in a window stays below alpha — an alert pages someone — or
// Benjamini–Hochberg, which bounds the share of false alarms and has more
// power with many features. A feature with fewer than WithMinSamples (100)
// values in a window gets no verdict (StatusInsufficient) and keeps its
// alarm state.
//
// # Data quality
//
// Every window also checks each feature's values (DataQuality, in
// FeatureResult.Quality), whatever its size — cheap checks, always on:
//   - missing: NaN, ±Inf and values of the wrong type, over all values,
//     against the reference's own missing share;
//   - mismatched: text that does not parse as a number, for a numerical
//     feature (a decimal comma, a unit), a subset of missing;
//   - out_of_range: finite values below the reference's minimum or above
//     its maximum, over the finite values;
//   - unseen: categories the reference never had, over the values, for a
//     categorical feature whose profile lists all its categories.
//
// A check breaches when its share exceeds the reference's by more than
// WithTolerance (DefaultTolerance, one percentage point: a fresh sample of
// the reference lands outside its range about 2/(n+1) of the time) in a
// window of at least WithMinSamples values, and raises and clears an alarm
// "<feature>: <check>" with the same hysteresis as drift. The counting
// shares the binning loop: with it, a value costs 8 to 15 ns of CPU on the
// shared Xeon here (BenchmarkDataQuality, BenchmarkBin), about 0.3 ns more
// than binning alone.
//
// # Multivariate drift
//
// Per-feature tests cannot see a change in how features move together.
// After NannyML's data reconstruction: WithMultivariate standardises the
// reference's numerical features (a missing value imputed with the
// mean), keeps the principal axes that explain more than a share of their
// variance (DefaultVarianceShare, 0.65), and records how far each
// reference row lies from its reconstruction from those axes (PCA: mean
// and spread of that error). Each live row's reconstruction error is
// added to its window (MultivariateState, 16 bytes of state); a window
// drifts when its mean error leaves the reference's mean ±
// WithMultivariateBand (3) standard errors for its number of rows — the
// band the reference's own spread allows, as NannyML draws it — and the
// alarm "multivariate" follows the usual hysteresis. Fitted with gonum;
// checked against scikit-learn's SimpleImputer, StandardScaler and PCA
// (testdata/golden/gen_multivariate.py: every row's error within 1e-9,
// the largest difference 1.2e-13). TestMultivariateCatchesWhatMarginalsMiss
// reverses one feature's correlations while its distribution stays: every
// per-feature KS test passes (adjusted p ≥ 0.35) and the multivariate
// check flags the window (error 1.38 against a band of [0.75, 0.84]).
// Each row costs a standardisation and a projection onto the kept axes.
//
// # Alarms and alerts
//
// A feature's alarm is raised after WithHysteresis' raiseAfter (2)
// consecutive windows with drift and cleared after clearAfter (3)
// consecutive windows clearly without: a distance below 0.8 × its threshold,
// or an adjusted p-value above threshold / 0.8 (the clear ratio), so a
// statistic hovering at its threshold does not flap. Each window in which
// alarms are raised or cleared makes one Alert, carrying the window's whole
// Result — features, statistics, thresholds, p-values after correction —
// given to every WithAlertFunc on the worker goroutine. Package webhook
// delivers them: its Sender's Send queues an alert and a goroutine POSTs
// it, signed, with retries and an Idempotency-Key (Alert.IdempotencyKey).
//
// # Rollouts
//
// Status(model, version) says whether a version's alarm is raised and why;
// Status.Err wraps ErrDrift (a feature's drift, or the multivariate check)
// or ErrDataQuality (a data-quality check). A rollout plan guard
// (rollout.GuardFunc) wraps
// it in one line without this package importing rollout, so a canary whose
// traffic drifts from its profile is rolled back:
//
//	guard := rollout.GuardFunc(func(ctx context.Context, s rollout.Snapshot) error {
//		return mon.Status(s.Model, s.Canary.Version).Err()
//	})
//
// Give the canary version its own profile (or let the monitor Learn one).
//
// # Replicas
//
// Each replica's Monitor.Snapshot exports its window state as JSON;
// MergeSnapshots combines those of one profile and Evaluate computes the
// statistics of the merge, the same as one process that saw all the traffic
// (exactly: counts add, and a merged window keeps its values only if its
// total is within the exact limit, as a single window would). A Report
// filled with such results renders like a Monitor's.
//
// # Telemetry
//
// With WithMeterProvider (default the global one) a Monitor exports the
// last window of each model version as observable instruments:
// servekit.drift.statistic and servekit.drift.p_value (attributes model,
// version, feature, statistic), servekit.drift.alarm (0 or 1; model,
// version, feature), servekit.drift.data_quality (a check's share; model,
// version, feature, check), servekit.drift.multivariate_error and
// servekit.drift.multivariate_upper (model, version),
// servekit.drift.check_alarm (1 while a check's alarm is raised; model,
// version, check), servekit.drift.windows (model, version), and the
// counters servekit.drift.rows and servekit.drift.dropped. Nothing is
// recorded on the request path.
//
// # Report
//
// Monitor.Report snapshots the windows and alerts; package report draws
// them as a page (report.Drift), beside package quality's model
// performance.
//
// # Correctness and performance
//
// The statistics are tested against values SciPy 1.10 computed
// (testdata/golden/gen.py and its JSON): every statistic within 1e-6, KS
// p-values on the exact and asymptotic paths with ties and unequal sizes,
// and the histogram statistics within their stated bounds of the raw ones;
// the largest difference seen is 3e-11. Measured on a shared 2-core Xeon
// (go test -bench . ./drift; CPU time, as the machine was loaded):
// observing a request of 64 rows × 8 features costs 25–35 ns of CPU per
// value, binning included (22–28 ns of it); evaluating a window of 8
// features takes 23–26 ms of CPU for 1000 rows against a 10,000-row
// reference (the exact KS distribution) and 5 ms for 20,000 rows
// (asymptotic). The
// exact distribution is the costly part: about 2·D·n·m steps for samples of
// n ≤ m ≤ 10,000 values and a statistic D, so up to about 100 ms for a
// strongly drifting feature at 10,000 values; it runs on the worker, once
// per window, never on the request path.
package drift

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/report"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/telemetry"
	"github.com/servekit/servekit/telemetry/promexport"
	"github.com/servekit/servekit/webhook"
)

// server is the real-time half: the model repository serves each model
// through one rollout.Router, composed as package rollout recommends:
//
//	HTTP (Open Inference Protocol V2) → telemetry → drift monitor → router ─┬→ v1: quality → predlog → cache → batch → ONNX
//	                                                                         └→ v2: quality → predlog → cache → batch → ONNX
//
// Telemetry is outermost, so it times and counts everything, labelled with
// the version that answered. The drift monitor sits above the router too:
// it keys each answer on Response.Version, so every version is compared
// with its own profile, and it sees what users were answered, not the
// shadow's mirrors. Below the router each version has its own chain: the
// prediction logger first, so cached answers are logged as served; a
// cache layer (over the server's one cache, whose keys carry the weights'
// fingerprint, so a reload never serves the old weights' answers); a
// batcher; the model. The loggers share the server's one log sink; the
// server made the cache and the sink and closes them after the chains. A mirrored request reaches the challenger's chain, so its
// logger records the challenger's answer under the same request id: the
// pairs the AUC guard compares.
//
// The inference API, the labels endpoint (behind the bearer token: labels
// steer the rollout's quality guard), /metrics and nothing else listen on
// the public address; the admin API (admin.Handler) and the drift report
// (/drift/, with the model-quality section) on a private one, both behind
// the bearer token.
type server struct {
	cache    *cache.Cache      // every version's: keys carry the weights' fingerprint
	sink     *predlog.FileSink // every version's loggers write here
	repo     *repository.Repository
	mon      *drift.Monitor
	qm       *quality.Monitor
	hook     *webhook.Sender
	metrics  *promexport.Exporter
	apiURL   string
	adminURL string
	stopAPI  func() error
	stopAdm  func() error
}

func startServer(ctx context.Context, o *options, tl *timeline, log *slog.Logger, retrainURL string, hookKey []byte) (s *server, err error) {
	s = &server{}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close(context.WithoutCancel(ctx)))
			s = nil
		}
	}()
	// Metrics first: every package below records into the global
	// MeterProvider this installs.
	if s.metrics, err = promexport.Setup(ctx); err != nil {
		return s, err
	}
	if s.hook, err = webhook.New(retrainURL, webhook.WithBackoff(50*time.Millisecond, 2*time.Second), webhook.WithSigningKey(hookKey)); err != nil {
		return s, err
	}
	// Model quality: each version's answers remembered by transaction id
	// (memory for ~20 s of traffic, far more than the label delay), the
	// chargebacks joined as they come, windows as the drift monitor's;
	// estimates from each version's reference, written beside its model.
	if s.qm, err = quality.NewMonitor(
		quality.WithWindow(quality.CountWindow(o.window)),
		quality.WithMemory(1<<16, time.Hour), quality.WithLabelDelay(2*o.labelDelay),
		quality.WithAlertFunc(func(a quality.Alert) {
			if a.Kind == quality.AlertRaised {
				tl.say("quality alarm on %s v%s: %s", a.Model, a.Version, a.Reason)
			}
		})); err != nil {
		return s, err
	}
	// An alert starts a retraining, an expensive action: the tests' level
	// is 0.001 rather than 0.05 (per window, after Bonferroni's correction
	// across the 9 features), so a false alarm needs two windows in a row
	// at odds of a thousand to one each. A drift that matters moves
	// p-values to 1e-10 and below.
	if s.mon, err = drift.NewMonitor(
		drift.WithWindow(drift.CountWindow(o.window, 0)),
		drift.WithThreshold(drift.KS, 0.001), drift.WithThreshold(drift.ChiSquare, 0.001),
		drift.WithAlertFunc(func(a drift.Alert) { s.hook.Send(a) }),
		drift.WithAlertFunc(func(a drift.Alert) {
			// A feature's drift is the story's event; the data-quality and
			// multivariate checks that join it are lines of their own.
			switch {
			case len(a.Raised) > 0:
				tl.add(a.Time, evDrift, "drift detected in %s v%s after window %d (%d rows): %s; alert sent to the retrainer",
					a.Model, a.Version, a.Result.Window.Index, a.Result.Window.Rows, alarmLine(a))
			case len(a.CheckRaised) > 0:
				tl.say("drift monitor: %v in alarm for %s v%s", a.CheckRaised, a.Model, a.Version)
			case len(a.Cleared) > 0:
				tl.say("drift alarm cleared in %s v%s: %v", a.Model, a.Version, a.Cleared)
			}
		})); err != nil {
		return s, err
	}

	// One cache and one log sink for every version, made and closed here
	// (after the repository, whose chains use them): the middleware that
	// uses a value handed to it never closes it (serving.Middleware). The
	// cache's keys carry each model's fingerprint, so a reload never
	// serves the old weights' answers; the sink's records carry model and
	// version, and one sink holds its directory's lock for the server's
	// life.
	if s.cache, err = cache.New(cache.WithMaxEntries(10_000), cache.WithTTL(time.Minute)); err != nil {
		return s, err
	}
	if s.sink, err = predlog.NewFileSink(o.logDir(), rowio.Parquet, predlog.WithMaxAge(o.logRotate), predlog.WithPrefix(modelName)); err != nil {
		return s, err
	}

	api := httpapi.New(httpapi.WithMaxTimeout(10 * time.Second))
	hook := func(model string, r *rollout.Router) {
		if r == nil {
			api.Remove(model, "")
			return
		}
		if err := api.Handle(model, serving.Chain(telemetry.Middleware(), s.mon.Middleware())(r)); err != nil {
			log.Error("cannot serve model", "model", model, "err", err)
		}
	}
	if s.repo, err = repository.Open(ctx, o.repoDir(), s.loader(o), repository.WithModelHook(hook),
		repository.WithPollInterval(o.poll), repository.WithLogger(log),
		repository.WithRouterOptions(rollout.WithLogger(log))); err != nil {
		return s, err
	}

	auth := admin.BearerToken(o.token)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("POST /v2/models/{model}/labels", auth.Protect(s.qm.LabelsHandler(), log))
	mux.Handle("/", api)
	if s.apiURL, s.stopAPI, err = serve(o.addr, mux, log); err != nil {
		return s, err
	}
	ctl, err := admin.New(s.repo, admin.WithLoader(s.repo), admin.WithAuthorizer(auth), admin.WithLogger(log))
	if err != nil {
		return s, err
	}
	// One token for the whole admin listener: the drift report shows the
	// live traffic's statistics, which are not for everyone either.
	adm := http.NewServeMux()
	adm.Handle("/", ctl)
	adm.Handle("GET /drift/", auth.Protect(report.Handler(report.Drift(s.mon), report.Quality(s.qm)), log))
	if s.adminURL, s.stopAdm, err = serve(o.adminAddr, adm, log); err != nil {
		return s, err
	}
	return s, nil
}

// alarmLine names the features an alert raised, with the weakest of their
// evidence: the largest corrected p-value (or smallest distance) among them.
func alarmLine(a drift.Alert) string {
	var worst *drift.FeatureResult
	for _, name := range a.Raised {
		f, ok := a.Result.Feature(name)
		if ok && f.Method.Test() && (worst == nil || f.AdjustedP > worst.AdjustedP) {
			worst = f
		}
	}
	line := strings.Join(a.Raised, ", ") + " in alarm"
	if worst != nil {
		line += fmt.Sprintf(" (corrected p-values at most %.2g, threshold %g)", worst.AdjustedP, worst.Threshold)
	}
	return line
}

// loader turns one version directory of the repository into its chain:
// predlog → cache → batch → ONNX model, and monitors the version with the
// drift profile written beside its model file.
func (s *server) loader(o *options) repository.LoadFunc {
	return func(_ context.Context, v repository.Version) (serving.Predictor, error) {
		prof, err := drift.ReadProfile(filepath.Join(v.Dir, drift.ProfileFileName))
		if err != nil {
			return nil, err
		}
		ref, err := quality.ReadReference(filepath.Join(v.Dir, quality.ReferenceFileName))
		if err != nil {
			return nil, err
		}
		var params struct {
			Threads int `json:"intra_op_threads"`
		}
		if err := v.DecodeParameters(&params); err != nil {
			return nil, err
		}
		opts := []onnx.Option{onnx.WithName(v.Model), onnx.WithVersion(v.Version), onnx.WithIntraOpThreads(max(params.Threads, 1))}
		if o.ortLib != "" {
			opts = append(opts, onnx.WithLibraryPath(o.ortLib))
		}
		m, err := onnx.Load(v.Path, opts...)
		if err != nil {
			return nil, err
		}
		b, err := batch.New(m, batch.WithMaxBatchRows(64), batch.WithMaxDelay(time.Millisecond))
		if err != nil {
			return nil, errors.Join(err, m.Close())
		}
		// From here each layer owns the one below: closing the chain closes
		// the logger (its queue written), the batcher (drained), the model.
		logged, err := predlog.New(s.cache.Middleware()(b), s.sink, predlog.WithTick(o.logRotate/2))
		if err != nil {
			return nil, errors.Join(err, b.Close())
		}
		chain := s.qm.Middleware()(logged)
		if err := errors.Join(s.mon.AddProfile(prof), s.qm.AddReference(ref)); err != nil {
			return nil, errors.Join(err, serving.Close(chain))
		}
		return chain, nil
	}
}

// close stops everything in the order that loses nothing: the listeners
// (requests in flight finish), the repository (each version's logger
// writes what it holds, then its batcher and model close), the cache and
// the log sink the versions shared, the webhook (queued alerts delivered,
// for a while), the monitor, the metrics.
func (s *server) close(ctx context.Context) error {
	var errs []error
	for _, stop := range []func() error{s.stopAPI, s.stopAdm} {
		if stop != nil {
			errs = append(errs, stop())
		}
	}
	if s.repo != nil {
		errs = append(errs, s.repo.Close())
	}
	if s.cache != nil {
		errs = append(errs, s.cache.Close())
	}
	if s.sink != nil {
		errs = append(errs, s.sink.Close())
	}
	if s.hook != nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		errs = append(errs, ignoreDeadline(s.hook.Shutdown(sctx)))
		cancel()
	}
	if s.mon != nil {
		errs = append(errs, s.mon.Close())
	}
	if s.qm != nil {
		errs = append(errs, s.qm.Close())
	}
	if s.metrics != nil {
		errs = append(errs, s.metrics.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// ignoreDeadline: alerts still queued when the time is up are dropped and
// counted by the webhook; not an error of the shutdown.
func ignoreDeadline(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// serve listens on addr and serves h until the returned stop is called,
// which lets requests in flight finish.
func serve(addr string, h http.Handler, log *slog.Logger) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}

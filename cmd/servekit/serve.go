package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/telemetry"
)

// loaded is one --model model: the chain the protocol server calls.
type loaded struct {
	name, version string
	p             serving.Predictor
}

// serve runs servekit serve until ctx ends, then drains. Startup facts go
// to stdout: a banner a person reads (the first line is "serving N
// model(s) on http://ADDR", which scripts and tests wait for), or, with
// --log-format json, log records like everything else.
func serve(ctx context.Context, args []string, stdout io.Writer) (err error) {
	o, err := parseServe(args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(o, stdout)
	say := banner(o, log, stdout)
	defer startGCFloor(uint64(o.gcMinHeap))()

	metricsHandler, shutdownMetrics, err := setupMetrics()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, shutdownMetrics(context.WithoutCancel(ctx))) }()

	// One cache for every model and version. A repository makes it even
	// without --cache: a model's config.pbtxt may enable response_cache on
	// its own.
	var c *cache.Cache
	if o.cache || o.repo != "" {
		var closeCache func() error
		if c, closeCache, err = newCache(o, log); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, closeCache()) }() // after the models: deferred first
	}
	modelCache := c
	if !o.cache {
		modelCache = nil
	}
	models, err := loadModels(o, modelCache, log)
	defer func() {
		for _, m := range models {
			err = errors.Join(err, serving.Close(m.p))
		}
	}()
	if err != nil {
		return err
	}

	// One protocol core under every transport and port: models registered
	// once are served over REST and gRPC with the same versions,
	// configuration and statistics.
	core, shownToken := protocolServer(o, log)
	opts := []httpapi.Option{
		httpapi.WithServer(core),
		httpapi.WithMaxBodyBytes(o.maxBody),
		httpapi.WithMaxElements(o.maxElements),
		httpapi.WithMaxTimeout(o.maxTimeout),
		httpapi.WithLogger(log),
	}
	if o.sagemaker && len(models) > 0 {
		opts = append(opts, httpapi.SageMaker(models[0].name))
	}
	for _, m := range models {
		if err := core.Handle(m.name, m.p, oip.Version(m.version)); err != nil {
			return err
		}
	}
	var repo *repository.Repository
	if o.repo != "" {
		if repo, err = openRepository(ctx, o, c, core, log); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, repo.Close()) }() // after the drain, before the cache
		if failed := repoFailed(repo); len(failed) > 0 && o.exitOnError {
			return fmt.Errorf("--model-repository: failed to load %s (see the log; --exit-on-error=false serves the others)", strings.Join(failed, ", "))
		}
	}

	api := httpapi.New(opts...)
	var rest http.Handler = api
	metricsURL := "" // where /metrics is, once known
	if o.allowMetrics {
		if o.metricsPort == o.httpPort {
			rest = metricsBeside{metrics: metricsHandler, api: api}
		} else {
			mm := http.NewServeMux()
			mm.Handle("GET /metrics", metricsHandler)
			addr, stopMetrics, err := serveAside(hostPort(o.metricsAddress, o.metricsPort), mm, log)
			if err != nil {
				return fmt.Errorf("--metrics-port: %w", err)
			}
			defer stopMetrics()
			metricsURL = "http://" + addr + "/metrics"
			say("metrics on %s", metricsURL)
		}
	}

	if o.debugAddr != "" {
		token, shown := adminToken(o.adminToken)
		addr, stopDebug, err := serveAside(o.debugAddr, pprofHandler(token, log), log)
		if err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		defer stopDebug()
		say("debug on http://%s/debug/pprof/ (Authorization: Bearer %s)", addr, shown)
	}

	// The HTTP port serves REST and, over h2c beside it, gRPC: one port
	// is all some platforms expose. The gRPC port serves gRPC only.
	// --allow-grpc=false turns gRPC off on both, as Triton's does.
	var httpHandler = rest
	served := "REST only (--allow-grpc=false)"
	if o.allowGRPC {
		httpHandler, served = withGRPC(core, rest, o), apis
	}
	var servers []*listening
	defer func() {
		for _, s := range servers {
			s.close() // no-op after a drain; on an early return, frees the ports
		}
	}()
	httpLn, err := listenHTTP(hostPort(o.httpAddress, o.httpPort), httpHandler, o, log)
	if err != nil {
		return fmt.Errorf("--http-port: %w", err)
	}
	servers = append(servers, httpLn)
	if o.allowMetrics && metricsURL == "" {
		metricsURL = "http://" + loopback(httpLn.addr) + "/metrics"
	}
	grpcAt := ""
	if o.allowGRPC && grpcBuilt && o.grpcPort != o.httpPort {
		g, err := listenGRPC(hostPort(o.grpcAddress, o.grpcPort), core, o, log)
		if err != nil {
			return fmt.Errorf("--grpc-port: %w", err)
		}
		servers = append(servers, g)
		grpcAt = g.addr
	}

	names := servedModels(models, repo)
	first := "MODEL"
	if len(names) > 0 {
		first = names[0]
	}
	if shownToken != "" {
		say("model repository control on (POST /v2/repository/..., gRPC Repository*; Authorization: Bearer %s)", shownToken)
	}
	if o.logFormat == "json" {
		log.Info("serving", "models", names, "http", httpLn.addr, "grpc", grpcAt, "metrics", metricsURL, "failed", repoFailed(repo))
	} else {
		if grpcAt != "" {
			say("gRPC on %s", grpcAt)
		}
		metricsAt := "no /metrics (--allow-metrics=false)"
		if metricsURL != "" {
			metricsAt = "metrics at " + metricsURL
		}
		try := curlLine(httpLn.addr, first)
		if o.allowGRPC {
			try += "\n" + grpcurlLine(cmpAddr(grpcAt, httpLn.addr), first, grpcAt != "")
		}
		say("serving %d model(s) on http://%s (%s; %s)%s; try:\n%s", len(names), httpLn.addr,
			served, metricsAt, repoSummary(repo), try)
	}

	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.serve(s.ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	err = drain(ctx, servers, secs(o.exitSecs), o.drainDelay, log)
	for range servers {
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return err // the deferred serving.Close runs after the drain
}

// listening is one of serve's listeners and the server on it: an
// http.Server behind a drain gate (the HTTP port), or gRPC's (grpc.go).
type listening struct {
	ln    net.Listener
	addr  string
	serve func(net.Listener) error
	// drain fails readiness while requests are still served (--drain-delay).
	drain func()
	// refuse stops new requests; shutdown waits for those in flight until
	// ctx ends; close ends everything at once.
	refuse   func()
	shutdown func(context.Context) error
	close    func()
	answered func() int64 // inference requests answered, for the exit log
}

// listenHTTP serves h on addr through an http.Server behind a drain gate.
func listenHTTP(addr string, h http.Handler, o *options, log *slog.Logger) (*listening, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &gate{next: h}
	srv := &http.Server{
		Handler:           g,
		Protocols:         protocols(), // h2c, which gRPC clients need
		ReadHeaderTimeout: o.readHeader,
		ReadTimeout:       o.read,
		WriteTimeout:      o.write,
		IdleTimeout:       o.idle,
		MaxHeaderBytes:    o.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &listening{
		ln: ln, addr: ln.Addr().String(),
		serve:    srv.Serve,
		drain:    func() { g.state.Store(draining) },
		refuse:   func() { g.state.Store(refusing) },
		shutdown: srv.Shutdown,
		close:    func() { srv.Close() },
		answered: g.answered.Load,
	}, nil
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

func cmpAddr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// banner returns the function that prints a startup fact for a person:
// to stdout in the default format; as an Info record with --log-format
// json, so every line of a JSON log parses.
func banner(o *options, log *slog.Logger, stdout io.Writer) func(format string, args ...any) {
	if o.logFormat == "json" {
		return func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	}
	return func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }
}

// newLogger is the process's logger: text, or one JSON object a line
// (--log-format json); debug records with --log-verbose 1 or more.
func newLogger(o *options, w io.Writer) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if o.logVerbose > 0 {
		hopts.Level = slog.LevelDebug
	}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}

// adminToken is the token of the admin routes: the one given, never
// printed (a secret), or one made up for this run and printed so a person
// can use it.
func adminToken(given string) (token, shown string) {
	if given != "" {
		return given, "<the --admin-token given>"
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b), hex.EncodeToString(b)
}

func loopback(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func curlLine(addr, model string) string {
	return fmt.Sprintf(`curl -s -H 'Content-Type: application/json' -d '{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}' http://%s/v2/models/%s/infer`,
		loopback(addr), model)
}

func loadModels(o *options, c *cache.Cache, log *slog.Logger) ([]loaded, error) {
	var out []loaded
	for _, spec := range o.models {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" {
			return out, fmt.Errorf("--model %q: want NAME[:VERSION]=PATH.onnx", spec)
		}
		// Triton numbers versions from 1; a model given without one is
		// version 1, so metrics, /versions/1 routes and model_version agree.
		name, version, _ := strings.Cut(name, ":")
		if version == "" {
			version = "1"
		}
		start := time.Now()
		ortOpts := append([]onnx.Option{onnx.WithName(name), onnx.WithVersion(version), onnx.WithIntraOpThreads(o.threads), onnx.WithWarmup(o.warmup),
			onnx.WithLogger(log)}, o.gpu.options()...)
		if o.ortLib != "" {
			ortOpts = append(ortOpts, onnx.WithLibraryPath(o.ortLib))
		}
		m, err := onnx.Load(path, ortOpts...)
		if err != nil {
			return out, err
		}
		p, err := buildChain(m, o, c, log)
		if err != nil {
			return out, errors.Join(err, m.Close())
		}
		log.Info("model loaded", "model", name, "version", version, "path", path, "device", m.Metadata().Device,
			"took", time.Since(start).Round(time.Millisecond), "batch", o.batch, "cache", o.cache)
		out = append(out, loaded{name, version, p})
	}
	return out, nil
}

// buildChain wraps a model in the request middleware, outermost first:
// telemetry (so it times and counts cache hits and refusals too, and its
// span parents the others), then cache (hits never wait for a slot), then
// admission control, then batch, then the model.
func buildChain(model serving.Predictor, o *options, c *cache.Cache, log *slog.Logger) (serving.Predictor, error) {
	p, err := versionChain(model, o, c, log)
	if err != nil {
		return nil, err
	}
	return telemetry.Middleware()(p), nil
}

// versionChain is the cache and batcher around one model: below a router,
// one per version, for repository models (repo.go).
//
// --batch is server-wide, and a repository holds models that cannot batch
// (Silero VAD: a scalar sample rate, LSTM states whose dimension 0 is
// fixed). Those are served unbatched rather than refused, as Triton serves
// a model with max_batch_size 0 beside batched ones; the log says so once
// per model, not at every reload of every version.
func versionChain(model serving.Predictor, o *options, c *cache.Cache, log *slog.Logger) (serving.Predictor, error) {
	p := model
	if o.batch {
		b, err := batch.New(p, batch.WithMaxBatchRows(o.batchRows), batch.WithMaxDelay(o.batchDelay), batch.WithMaxQueueRows(o.batchQueueRows),
			batch.WithAdaptive(o.batchAdaptive))
		switch {
		case errors.Is(err, batch.ErrNotBatchable):
			md, _ := serving.MetadataOf(model)
			if _, said := o.unbatched.LoadOrStore(md.Name, true); !said {
				log.Info("model does not batch on dimension 0: serving it unbatched (--batch applies to the models that can)", "model", md.Name)
			}
		case err != nil:
			return nil, err
		default:
			p = b
		}
	}
	rows := 0
	if p != model { // batched
		rows = o.batchRows
	}
	limited, err := withLimit(p, o, rows)
	if err != nil {
		return nil, errors.Join(err, serving.Close(p)) // the batcher; the model is closed again, harmlessly
	}
	p = limited
	if c != nil {
		p = c.Middleware()(p)
	}
	return p, nil
}

// metricsBeside serves GET /metrics beside the API on one port. A
// ServeMux in front of the API cost every infer request a route match
// (about 2 % of the server's CPU under bench/http.sh) to take one path
// aside.
type metricsBeside struct{ metrics, api http.Handler }

func (m metricsBeside) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		m.metrics.ServeHTTP(w, r)
		return
	}
	m.api.ServeHTTP(w, r)
}

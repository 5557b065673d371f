// Command realtime is a production-shaped inference server: it loads ONNX
// models, serves them over the Open Inference Protocol (KServe V2) REST API
// plus V1 and SageMaker routes and, on the same port, the protocol's gRPC
// API, exports OpenTelemetry metrics at /metrics, and drains in-flight
// requests on SIGTERM.
//
//	go run ./examples/realtime                        # fraud demo model on :8080
//	go run ./examples/realtime -model fraud=m.onnx -model other=o.onnx -batch -cache
//	go run ./examples/realtime -repo models/            # a model repository, hot-reloaded
//	go run ./examples/realtime -repo models/ -model-control-mode explicit -load-model fraud
//	                                                    # Triton's model control: clients load and
//	                                                    # unload through the repository extension
//
// REST and gRPC serve one oip.Server: the same models, versions, model
// configuration and statistics (Triton's extensions) on both. -grpc-addr
// (off by default; Triton's layout is :8001) also serves gRPC with grpc-go
// on a port of its own, the faster path, with grpc.health.v1.Health per
// model and server reflection (grpcapi.NewServer).
//
// Every flag has an environment variable (SERVEKIT_ADDR, SERVEKIT_MODELS,
// ...; see -help); flags win. ONNX Runtime comes from -ort-lib or
// $ONNXRUNTIME_LIB. -metrics-addr moves /metrics to a listener of its own
// (scrapers reach it, clients do not); -debug-addr serves pprof behind the
// admin token (-admin-token, $SERVEKIT_ADMIN_TOKEN, else a random one that
// is printed). -batch batches the models that batch on dimension 0 and
// serves the others unbatched, saying so once per model.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "realtime:", err)
		os.Exit(1)
	}
}

type options struct {
	addr            string
	models          modelFlags
	ortLib          string
	threads         int
	maxBody         int64
	maxMessage      int
	grpcAddr        string
	maxElements     int64
	maxTimeout      time.Duration
	batch           bool
	batchRows       int
	batchDelay      time.Duration
	batchAdaptive   bool
	batchQueueRows  int
	cache           bool
	cacheEntries    int
	cacheTTL        time.Duration
	sagemaker       bool
	readHeader      time.Duration
	read, write     time.Duration
	idle            time.Duration
	maxHeaderBytes  int
	shutdownTimeout time.Duration
	reliabilityOptions
	repoOptions
	gpu *gpuOptions // gpu.go

	unbatched sync.Map // names of the models -batch could not batch, logged once
}

// modelFlags is a repeatable -model name[:version]=path flag.
type modelFlags []string

func (m *modelFlags) String() string { return strings.Join(*m, ",") }
func (m *modelFlags) Set(v string) error {
	*m = append(*m, strings.Split(v, ",")...)
	return nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("realtime", flag.ContinueOnError)
	fs.SetOutput(out)
	// Environment variables give the defaults so containers need no flags.
	defAddr := ":" + env("PORT", httpapi.VertexPort("8080"))
	fs.StringVar(&o.addr, "addr", env("SERVEKIT_ADDR", defAddr), "listen address ($SERVEKIT_ADDR, else :$PORT / :$AIP_HTTP_PORT / :8080)")
	fs.Var(&o.models, "model", "model as name[:version]=path.onnx (version 1 by default), repeatable ($SERVEKIT_MODELS, comma-separated; default fraud=testdata/models/fraud.onnx)")
	fs.StringVar(&o.ortLib, "ort-lib", env("ONNXRUNTIME_LIB", ""), "ONNX Runtime shared library ($ONNXRUNTIME_LIB)")
	fs.IntVar(&o.threads, "threads", 1, "ONNX Runtime intra-op threads per model")
	fs.Int64Var(&o.maxBody, "max-body", 16<<20, "largest request body in bytes (413 above)")
	fs.StringVar(&o.grpcAddr, "grpc-addr", env("SERVEKIT_GRPC_ADDR", ""), "also serve gRPC with grpc-go on this address, with health and reflection (Triton: :8001; $SERVEKIT_GRPC_ADDR; the REST port serves gRPC too)")
	fs.IntVar(&o.maxMessage, "grpc-max-message", 4<<20, "largest gRPC message in bytes, compressed ones as they inflate (ResourceExhausted above; grpc-go's default)")
	fs.Int64Var(&o.maxElements, "max-elements", 1<<22, "most elements in one input tensor")
	fs.DurationVar(&o.maxTimeout, "max-timeout", 10*time.Second, "time budget cap per request (0: none)")
	fs.BoolVar(&o.batch, "batch", env("SERVEKIT_BATCH", "") == "1", "micro-batch requests ($SERVEKIT_BATCH=1)")
	fs.IntVar(&o.batchRows, "batch-max-rows", 64, "largest batch in rows")
	fs.DurationVar(&o.batchDelay, "batch-max-delay", time.Millisecond, "longest wait to fill a batch")
	fs.BoolVar(&o.batchAdaptive, "batch-adaptive", true, "run a lone request at once when the model is idle instead of waiting for company (false: always wait up to -batch-max-delay)")
	fs.IntVar(&o.batchQueueRows, "batch-queue-rows", 4096, "queued rows before 429")
	fs.BoolVar(&o.cache, "cache", env("SERVEKIT_CACHE", "") == "1", "cache responses ($SERVEKIT_CACHE=1)")
	fs.IntVar(&o.cacheEntries, "cache-entries", 100_000, "response cache entries")
	fs.DurationVar(&o.cacheTTL, "cache-ttl", time.Minute, "response cache time to live")
	fs.BoolVar(&o.sagemaker, "sagemaker", false, "add SageMaker's /ping and /invocations for the first model")
	fs.DurationVar(&o.readHeader, "read-header-timeout", 5*time.Second, "http.Server ReadHeaderTimeout (slow-header clients)")
	fs.DurationVar(&o.read, "read-timeout", 30*time.Second, "http.Server ReadTimeout")
	fs.DurationVar(&o.write, "write-timeout", 30*time.Second, "http.Server WriteTimeout")
	fs.DurationVar(&o.idle, "idle-timeout", 120*time.Second, "http.Server IdleTimeout")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", 64<<10, "http.Server MaxHeaderBytes")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for in-flight requests")
	o.reliabilityOptions.flags(fs)
	addRepoFlags(fs, &o.repoOptions)
	addControlFlags(fs, &o.repoOptions)
	o.gpu = gpuFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := checkControl(o); err != nil {
		return nil, err
	}
	if len(o.models) == 0 && o.repo == "" {
		_ = o.models.Set(env("SERVEKIT_MODELS", "fraud=testdata/models/fraud.onnx"))
	}
	if o.redis.addr != "" && !o.cache {
		return nil, errors.New("-cache-redis ($SERVEKIT_REDIS) needs -cache ($SERVEKIT_CACHE=1)")
	}
	return o, nil
}

// loaded is one served model: the chain the handler calls.
type loaded struct {
	name, version string
	p             serving.Predictor
}

// run serves until ctx ends, then shuts down gracefully. It is main without
// the process: tests call it in-process.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))

	metricsHandler, shutdownMetrics, err := setupMetrics()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, shutdownMetrics(context.WithoutCancel(ctx))) }()

	// One cache for every model and version. -repo makes it even without
	// -cache: a model's config.pbtxt may enable response_cache on its own.
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

	// One protocol core under both transports: models registered once are
	// served over REST and gRPC with the same versions, configuration and
	// statistics.
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
	mux := http.NewServeMux()
	metricsAt := "metrics at /metrics"
	if o.metricsAddr == "" {
		mux.Handle("GET /metrics", metricsHandler)
	} else {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metricsHandler)
		addr, stopMetrics, err := serveAside(o.metricsAddr, mm, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
		metricsAt = "metrics at http://" + addr + "/metrics"
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", addr)
	}
	api := httpapi.New(opts...)
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
	}
	names := servedModels(models, repo)
	if len(names) == 0 {
		names = []string{"none"}
	}
	mux.Handle("/", api)
	g := &gate{next: withGRPC(core, mux, o)}
	if shownToken != "" {
		fmt.Fprintf(stdout, "model repository control on (POST /v2/repository/..., gRPC Repository*; Authorization: Bearer %s)\n", shownToken)
	}

	if o.debugAddr != "" {
		token, shown := adminToken(o.adminToken)
		addr, stopDebug, err := serveAside(o.debugAddr, pprofHandler(token, log), log)
		if err != nil {
			return err
		}
		defer stopDebug()
		fmt.Fprintf(stdout, "debug on http://%s/debug/pprof/ (Authorization: Bearer %s)\n", addr, shown)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           g,           // gRPC beside REST on one port, behind the drain gate
		Protocols:         protocols(), // h2c, which gRPC clients need
		ReadHeaderTimeout: o.readHeader,
		ReadTimeout:       o.read,
		WriteTimeout:      o.write,
		IdleTimeout:       o.idle,
		MaxHeaderBytes:    o.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	rpc, err := serveGRPC(core, o)
	if err != nil {
		ln.Close()
		return err
	}
	if rpc != nil {
		fmt.Fprintf(stdout, "gRPC on %s (grpc-go, with health and reflection); try:\n%s\n", rpc.addr, grpcurlNativeLine(rpc.addr, names[0]))
	}
	fmt.Fprintf(stdout, "serving %d model(s) on http://%s (%s; %s)%s; try:\n%s\n%s\n", len(servedModels(models, repo)), ln.Addr(),
		apis, metricsAt, repoSummary(repo), curlLine(ln.Addr().String(), names[0]), grpcurlLine(ln.Addr().String(), names[0]))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return errors.Join(err, rpc.stop(context.WithoutCancel(ctx), log))
	case err := <-rpc.failed(): // its listener failed: stop everything
		rpc.close()
		srv.Close()
		<-errc
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}
	err = drain(ctx, srv, g, rpc, o.drainDelay, o.shutdownTimeout, log)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err // the deferred serving.Close runs after the drain
}

// adminToken is the token of the admin routes: the one given, never
// printed (a secret), or one made up for this run and printed so a person
// can use it.
func adminToken(given string) (token, shown string) {
	if given != "" {
		return given, "<the -admin-token given>"
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b), hex.EncodeToString(b)
}

func curlLine(addr, model string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf(`curl -s -H 'Content-Type: application/json' -d '{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}' http://%s/v2/models/%s/infer`,
		net.JoinHostPort(host, port), model)
}

func loadModels(o *options, c *cache.Cache, log *slog.Logger) ([]loaded, error) {
	var out []loaded
	for _, spec := range o.models {
		name, path, ok := strings.Cut(spec, "=")
		if !ok {
			return out, fmt.Errorf("-model %q: want name[:version]=path.onnx", spec)
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
// -batch is server-wide, and a repository holds models that cannot batch
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
				log.Info("model does not batch on dimension 0: serving it unbatched (-batch applies to the models that can)", "model", md.Name)
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

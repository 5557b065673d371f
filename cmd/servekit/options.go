package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/servekit/servekit/cache"
)

// options are servekit serve's flags.
type options struct {
	// Triton's names and meanings.
	repo           string
	httpAddress    string
	httpPort       int
	grpcAddress    string
	grpcPort       int
	allowGRPC      bool
	metricsAddress string
	metricsPort    int
	allowMetrics   bool
	controlMode    string
	pollSecs       float64
	loadModels     listFlag
	strictConfig   bool
	exitOnError    bool
	exitSecs       float64
	logVerbose     int
	logFormat      string
	cacheConfig    string

	// servekit's own.
	models         listFlag
	ortLib         string
	threads        int
	warmup         int
	maxBody        int64
	maxMessage     int
	maxElements    int64
	maxTimeout     time.Duration
	gcMinHeap      int64
	batch          bool
	batchRows      int
	batchDelay     time.Duration
	batchAdaptive  bool
	batchQueueRows int
	cache          bool
	cacheEntries   int
	cacheTTL       time.Duration
	cacheBytes     int64 // from --cache-config local,size=N; 0: no byte bound
	redis          redisOptions
	maxInFlight    int
	maxQueue       int
	maxWait        time.Duration
	drainDelay     time.Duration
	debugAddr      string
	adminToken     string
	sagemaker      bool
	readHeader     time.Duration
	read, write    time.Duration
	idle           time.Duration
	maxHeaderBytes int
	gpu            gpuOptions

	unbatched sync.Map // names of the models --batch could not batch, logged once
}

// redisOptions are the flags of the cache's shared tier. The secrets come
// from the environment in a deployment (a Secret, deploy/k8s): flags show
// in ps.
type redisOptions struct {
	addr            string
	password        string
	hmacKey         string
	hmacPrevious    string
	unauthenticated bool
	timeout         time.Duration
}

// Model control modes, with Triton's names and meanings:
//
//	none      load every model of the repository at start; never re-read it (Triton's default)
//	poll      load every model, and re-read the repository every --repository-poll-secs
//	explicit  load only the --load-model models (all with --load-model '*'); clients
//	          load and unload models through the repository extension (REST
//	          /v2/repository/..., gRPC Repository*), behind --admin-token; the
//	          watcher keeps the loaded models' versions in step
//
// Repository control changes what every client is answered with, so it is
// an admin capability: only explicit mode turns it on, and only with the
// admin token (the one pprof takes), never for anyone who can reach the
// port.
const (
	controlNone     = "none"
	controlPoll     = "poll"
	controlExplicit = "explicit"
)

const serveUsage = "servekit serve --model-repository DIR | --model NAME[:VERSION]=PATH ... [flags]"

// parseServe reads serve's flags and checks what no single flag can.
func parseServe(args []string, out io.Writer) (*options, error) {
	o := &options{}
	f := newFlags("serve", serveUsage, out)

	f.section("Models (Triton's flags)")
	f.str(&o.repo, "model-repository", "", "serve every model and version of a model repository: `DIR`/<model>/<version>/model.onnx, with <model>/config.pbtxt or config.json (Triton's configuration: batching, cache, instances, warm-up; see package repository)")
	f.str(&o.controlMode, "model-control-mode", controlNone, "none (load every repository model at start), poll (and re-read the repository every --repository-poll-secs), or explicit (load --load-model only; clients load and unload through the repository extension, behind --admin-token)")
	f.float(&o.pollSecs, "repository-poll-secs", 15, "with --model-control-mode poll (or explicit), how often the repository is re-read for new, changed and removed versions; fractions allowed")
	f.value(&o.loadModels, "load-model", "with --model-control-mode explicit, a `MODEL` to load at start, repeatable; '*' loads every model")
	f.boolean(&o.strictConfig, "strict-model-config", false, "refuse a repository model whose configuration sets a field servekit does not implement (otherwise it is logged and listed in the model's status)")
	f.boolean(&o.exitOnError, "exit-on-error", true, "exit when a model fails to load at start (false: serve the others; the failed versions answer 503 and their status says why)")
	f.section("Models (servekit's)")
	f.value(&o.models, "model", "serve one ONNX file as `NAME[:VERSION]=PATH` (version 1 by default), repeatable; beside --model-repository or instead of it")
	f.str(&o.ortLib, "ort-lib", "", "the ONNX Runtime shared library (else $ONNXRUNTIME_LIB, third_party/onnxruntime/ above the working directory, then the system's)")
	f.integer(&o.threads, "threads", 1, "ONNX Runtime intra-op threads per model (a repository model's parameters may set its own)")
	f.integer(&o.warmup, "warmup", 0, "warm each --model up with N runs on zeros, dynamic dimensions 1, before serving (repository models configure model_warmup instead)")

	f.section("Listeners (Triton's flags)")
	defPort, err := defaultHTTPPort()
	if err != nil {
		return nil, usageError{err}
	}
	f.str(&o.httpAddress, "http-address", "0.0.0.0", "address the HTTP service binds (REST, and gRPC over plaintext HTTP/2 beside it)")
	f.integer(&o.httpPort, "http-port", defPort, "port of the HTTP service (0: any free port; the default is $PORT or $AIP_HTTP_PORT when the platform sets one, else 8000)")
	f.str(&o.grpcAddress, "grpc-address", "0.0.0.0", "address the gRPC service binds")
	f.integer(&o.grpcPort, "grpc-port", 8001, "port of the gRPC service, gRPC only (0: any free port; the --http-port value: no port of its own, the HTTP port answers gRPC anyway)")
	f.boolean(&o.allowGRPC, "allow-grpc", true, "serve gRPC, on --grpc-port and on the HTTP port (false: REST only, as in Triton)")
	f.str(&o.metricsAddress, "metrics-address", "0.0.0.0", "address the metrics service binds")
	f.integer(&o.metricsPort, "metrics-port", 8002, "port of /metrics (Prometheus text; 0: any free port; the --http-port value, 0 included: served on the HTTP port, for platforms that expose one port)")
	f.boolean(&o.allowMetrics, "allow-metrics", true, "serve /metrics")
	f.float(&o.exitSecs, "exit-timeout-secs", 30, "on SIGTERM, how long in-flight requests get to finish (after --drain-delay)")

	f.section("Logging (Triton's flags)")
	f.integer(&o.logVerbose, "log-verbose", 0, "1 or more: debug records too")
	f.str(&o.logFormat, "log-format", "default", "default (text) or json: one JSON object a line, with the startup facts as records instead of the banner (log/slog)")

	f.section("Batching")
	f.boolean(&o.batch, "batch", false, "micro-batch the --model models, and the repository models whose configuration has no dynamic_batching, that batch on dimension 0")
	f.integer(&o.batchRows, "batch-max-rows", 64, "largest batch in rows")
	f.duration(&o.batchDelay, "batch-max-delay", time.Millisecond, "longest wait to fill a batch")
	f.boolean(&o.batchAdaptive, "batch-adaptive", true, "run a lone request at once when the model is idle instead of waiting for company (false: always wait up to the delay, Triton's rule; applies to repository models too)")
	f.integer(&o.batchQueueRows, "batch-queue-rows", 4096, "queued rows before 429 (a configuration's max_queue_size wins)")

	f.section("Response cache")
	f.boolean(&o.cache, "cache", false, "cache every model's responses (a repository model's response_cache.enable wins)")
	f.str(&o.cacheConfig, "cache-config", "", "Triton's `local,size=BYTES`: bound the cache's memory (Triton's other cache kinds are refused; Redis is --cache-redis)")
	f.integer(&o.cacheEntries, "cache-entries", 100_000, "most cache entries")
	f.duration(&o.cacheTTL, "cache-ttl", time.Minute, "cache entries' time to live")
	f.str(&o.redis.addr, "cache-redis", "", "`HOST:PORT` of a Redis shared by replicas as the cache's second tier")
	f.str(&o.redis.password, "cache-redis-password", "", "password of --cache-redis (prefer the variable: flags show in ps)")
	f.str(&o.redis.hmacKey, "cache-redis-hmac-key", "", "secret of at least 32 bytes that authenticates the entries every replica writes to --cache-redis, e.g. openssl rand -hex 32 (prefer the variable)")
	f.str(&o.redis.hmacPrevious, "cache-redis-hmac-key-previous", "", "a key being rotated out: entries it signed are still accepted")
	f.duration(&o.redis.timeout, "cache-redis-timeout", cache.DefaultL2Timeout, "bound on every call to --cache-redis: past it the call counts as a miss, so a slow Redis never slows a request by more")
	f.boolean(&o.redis.unauthenticated, "cache-redis-unauthenticated", false, "run --cache-redis without --cache-redis-hmac-key: whoever can write to the Redis can then change every replica's answers")

	f.section("Admission control and limits")
	f.integer(&o.maxInFlight, "max-inflight", 0, "requests running in a model at once; more queue, then get 429 (0: one per core, or 2 batches with batching; -1: no limit)")
	f.integer(&o.maxQueue, "max-queue", -1, "requests waiting for a slot before 429 (-1: as many as --max-inflight)")
	f.duration(&o.maxWait, "max-wait", 0, "longest wait for a slot before 429 (0: the request's own deadline)")
	f.int64(&o.maxBody, "max-body", 16<<20, "largest request body in bytes (413 above)")
	f.integer(&o.maxMessage, "grpc-max-message", 4<<20, "largest gRPC message in bytes, compressed ones as they inflate (ResourceExhausted above; grpc-go's default)")
	f.int64(&o.maxElements, "max-elements", 1<<22, "most elements in one input tensor")
	f.duration(&o.maxTimeout, "max-timeout", 10*time.Second, "time budget cap per request (0: none)")
	f.int64(&o.gcMinHeap, "gc-min-heap", 16<<20, "Go heap in bytes below which no garbage collection runs: servekit keeps little Go memory alive, and Go's 4 MiB floor made it collect ~100 times a second under load (0: Go's default; ignored when $GOGC is set)")

	f.section("HTTP server")
	f.duration(&o.drainDelay, "drain-delay", 0, "on SIGTERM, fail readiness and keep serving this long before refusing new requests, so load balancers stop sending first (Kubernetes: a few seconds)")
	f.duration(&o.readHeader, "read-header-timeout", 5*time.Second, "http.Server ReadHeaderTimeout (slow-header clients)")
	f.duration(&o.read, "read-timeout", 30*time.Second, "http.Server ReadTimeout")
	f.duration(&o.write, "write-timeout", 30*time.Second, "http.Server WriteTimeout")
	f.duration(&o.idle, "idle-timeout", 120*time.Second, "http.Server IdleTimeout")
	f.integer(&o.maxHeaderBytes, "max-header-bytes", 64<<10, "http.Server MaxHeaderBytes")
	f.boolean(&o.sagemaker, "sagemaker", false, "add SageMaker's /ping and /invocations for the first --model")

	f.section("Admin")
	f.str(&o.adminToken, "admin-token", "", "bearer token of the admin routes (--debug-addr, and the repository extension under --model-control-mode explicit); random, and printed, when empty")
	f.str(&o.debugAddr, "debug-addr", "", "serve net/http/pprof on this separate `ADDRESS`, e.g. 127.0.0.1:6060, behind --admin-token (off by default: never expose it publicly)")

	f.section("GPU")
	f.integer(&o.gpu.device, "cuda", -1, "run the models on this CUDA `DEVICE` (-1: on the CPU; a repository model's instance_group wins)")
	f.int64(&o.gpu.memLimit, "cuda-mem-limit", 0, "cap on each model's CUDA memory arena, in bytes (0: none)")
	f.str(&o.gpu.convAlgo, "cuda-conv-algo", "", "cuDNN convolution algorithm search: EXHAUSTIVE (ONNX Runtime's default), HEURISTIC or DEFAULT")
	f.boolean(&o.gpu.fallback, "cpu-fallback", false, "with --cuda, serve on the CPU (and log why) when CUDA cannot run, instead of failing")

	if err := f.parse(args); err != nil {
		return nil, usageError{err}
	}
	if err := renamedEnv(); err != nil {
		return nil, usageError{err}
	}
	if err := o.check(); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

// defaultHTTPPort is Triton's 8000, unless the platform names the port:
// Cloud Run's $PORT, Vertex AI's $AIP_HTTP_PORT.
func defaultHTTPPort() (int, error) {
	for _, k := range []string{"PORT", "AIP_HTTP_PORT"} {
		if v := os.Getenv(k); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p < 0 || p > math.MaxUint16 {
				return 0, fmt.Errorf("$%s=%q: not a port", k, v)
			}
			return p, nil
		}
	}
	return 8000, nil
}

// check refuses what the flags cannot mean together, before anything
// loads.
func (o *options) check() error {
	var errs []error
	if o.gcMinHeap < 0 || o.gcMinHeap > 1<<40 {
		errs = append(errs, fmt.Errorf("--gc-min-heap %d: want 0 to 1 TiB", o.gcMinHeap))
	}
	if len(o.models) == 0 && o.repo == "" {
		errs = append(errs, errors.New("nothing to serve: give --model-repository DIR, or --model NAME=PATH.onnx"))
	}
	switch o.controlMode {
	case controlNone, controlPoll, controlExplicit:
	default:
		errs = append(errs, fmt.Errorf("--model-control-mode %q: want none, poll or explicit", o.controlMode))
	}
	if len(o.loadModels) > 0 && o.controlMode != controlExplicit {
		errs = append(errs, errors.New("--load-model needs --model-control-mode explicit (as in Triton)"))
	}
	if o.controlMode != controlNone && o.repo == "" {
		errs = append(errs, fmt.Errorf("--model-control-mode %s needs --model-repository", o.controlMode))
	}
	if !(o.pollSecs > 0) || o.pollSecs > math.MaxInt64/float64(time.Second) {
		errs = append(errs, fmt.Errorf("--repository-poll-secs %v: want a positive number of seconds", o.pollSecs))
	}
	if !(o.exitSecs >= 0) || o.exitSecs > math.MaxInt64/float64(time.Second) {
		errs = append(errs, fmt.Errorf("--exit-timeout-secs %v: want seconds, 0 or more", o.exitSecs))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"--http-port", o.httpPort}, {"--grpc-port", o.grpcPort}, {"--metrics-port", o.metricsPort}} {
		if p.port < 0 || p.port > math.MaxUint16 {
			errs = append(errs, fmt.Errorf("%s %d: not a port", p.name, p.port))
		}
	}
	switch o.logFormat {
	case "default", "ISO8601", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want default or json", o.logFormat))
	}
	if o.cacheConfig != "" {
		n, err := parseCacheConfig(o.cacheConfig)
		if err != nil {
			errs = append(errs, err)
		}
		o.cacheBytes = n
	}
	if o.redis.addr != "" && !o.cache && o.repo == "" {
		errs = append(errs, errors.New("--cache-redis needs --cache, or a --model-repository whose models enable response_cache"))
	}
	return errors.Join(errs...)
}

// parseCacheConfig reads Triton's --cache-config for its local cache,
// local,size=BYTES, which bounds the cache's memory. Triton's cache turns
// on only for the models whose configuration enables it; here too, or for
// every model with --cache.
func parseCacheConfig(v string) (int64, error) {
	kind, rest, _ := strings.Cut(v, ",")
	if kind != "local" {
		return 0, fmt.Errorf("--cache-config %q: only Triton's local cache (local,size=BYTES) maps here; a shared tier is --cache-redis", v)
	}
	key, size, _ := strings.Cut(rest, "=")
	n, err := strconv.ParseInt(size, 10, 64)
	if key != "size" || err != nil || n <= 0 {
		return 0, fmt.Errorf("--cache-config %q: want local,size=BYTES", v)
	}
	return n, nil
}

// secs is a whole number of Triton's seconds, fractions allowed, as a
// duration.
func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// pollInterval is how often the repository is re-read: never in none
// mode; in explicit mode, the loaded models' versions are kept in step.
func (o *options) pollInterval() time.Duration {
	if o.controlMode == controlNone {
		return 0
	}
	return secs(o.pollSecs)
}

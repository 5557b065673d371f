package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
)

// reliabilityOptions are the flags for admission control, draining and the
// shared cache tier; they live here so the serving flags in main.go stay
// short.
type reliabilityOptions struct {
	maxInFlight int
	maxQueue    int
	maxWait     time.Duration
	drainDelay  time.Duration
	debugAddr   string
	metricsAddr string
	adminToken  string
	redis       redisOptions
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

func (o *reliabilityOptions) flags(fs *flag.FlagSet) {
	fs.IntVar(&o.maxInFlight, "max-inflight", 0, "requests running in a model at once; more queue, then get 429 (0: one per core, or 2 × -batch-max-rows with -batch; -1: no limit)")
	fs.IntVar(&o.maxQueue, "max-queue", -1, "requests waiting for a slot before 429 (-1: as many as -max-inflight)")
	fs.DurationVar(&o.maxWait, "max-wait", 0, "longest wait for a slot before 429 (0: the request's own deadline)")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGTERM, fail readiness and keep serving this long before refusing new requests, so load balancers stop sending first (Kubernetes: a few seconds)")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "serve net/http/pprof on this separate address, e.g. 127.0.0.1:6060, behind -admin-token (off by default: never expose it publicly)")
	fs.StringVar(&o.adminToken, "admin-token", env("SERVEKIT_ADMIN_TOKEN", ""), "bearer token of the admin routes (-debug-addr, and the model repository extension under -model-control-mode explicit) ($SERVEKIT_ADMIN_TOKEN; random, and printed, when empty)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", env("SERVEKIT_METRICS_ADDR", ""), "serve /metrics on this separate address, e.g. :9091, instead of the inference port, so a scraper can reach it and clients cannot ($SERVEKIT_METRICS_ADDR)")
	fs.StringVar(&o.redis.addr, "cache-redis", env("SERVEKIT_REDIS", ""), "host:port of a Redis shared by replicas as the cache's second tier ($SERVEKIT_REDIS; needs -cache)")
	fs.StringVar(&o.redis.password, "cache-redis-password", env("SERVEKIT_REDIS_PASSWORD", ""), "password of -cache-redis ($SERVEKIT_REDIS_PASSWORD: prefer it, flags show in ps)")
	fs.StringVar(&o.redis.hmacKey, "cache-redis-hmac-key", env("SERVEKIT_REDIS_HMAC_KEY", ""), "secret of at least 32 bytes that authenticates the entries every replica writes to -cache-redis, e.g. openssl rand -hex 32 ($SERVEKIT_REDIS_HMAC_KEY: prefer it)")
	fs.StringVar(&o.redis.hmacPrevious, "cache-redis-hmac-key-previous", env("SERVEKIT_REDIS_HMAC_KEY_PREVIOUS", ""), "a key being rotated out: entries it signed are still accepted ($SERVEKIT_REDIS_HMAC_KEY_PREVIOUS)")
	fs.DurationVar(&o.redis.timeout, "cache-redis-timeout", cache.DefaultL2Timeout, "bound on every call to -cache-redis: past it the call counts as a miss, so a slow Redis never slows a request by more")
	fs.BoolVar(&o.redis.unauthenticated, "cache-redis-unauthenticated", false, "run -cache-redis without -cache-redis-hmac-key: whoever can write to the Redis can then change every replica's answers")
}

// withLimit wraps p in admission control, unless turned off. The automatic
// limit is what keeps the model busy
// without piling work on it: one run per core for a model run on its own
// (each run takes -threads cores), and two batches' worth of rows with the
// batcher (batchRows > 0 when p batches), so the next batch forms while one runs.
func withLimit(p serving.Predictor, o *options, batchRows int) (serving.Predictor, error) {
	n := o.maxInFlight
	switch {
	case n < 0:
		return p, nil
	case n == 0 && batchRows > 0:
		n = 2 * batchRows
	case n == 0:
		n = max(1, runtime.GOMAXPROCS(0)/max(1, o.threads))
	}
	opts := []limit.Option{limit.WithMaxInFlight(n), limit.WithMaxWait(o.maxWait)}
	if o.maxQueue >= 0 {
		opts = append(opts, limit.WithMaxQueue(o.maxQueue))
	}
	return limit.New(p, opts...)
}

// newCache builds the response cache, with Redis as L2 when asked
// (redis.go); the returned close stops both. One cache serves every model
// and version, those of -repo too: entries are keyed by each model's
// content fingerprint, so a hot reload or a replica on other weights never
// gets another's answers.
func newCache(o *options, log *slog.Logger) (*cache.Cache, func() error, error) {
	opts := []cache.Option{cache.WithMaxEntries(o.cacheEntries), cache.WithTTL(o.cacheTTL), cache.WithLogger(log)}
	l2, closeL2, err := redisL2(o.redis)
	if err != nil {
		return nil, nil, err
	}
	c, err := cache.New(append(opts, l2...)...)
	if err != nil {
		return nil, nil, errors.Join(err, closeL2())
	}
	return c, func() error { return errors.Join(c.Close(), closeL2()) }, nil
}

// Drain states of a gate.
const (
	open     int32 = iota
	draining       // readiness fails; requests are still served
	refusing       // new requests get 503 + Connection: close
)

// gate wraps the server's handler for a clean SIGTERM under load (the
// Kubernetes sequence): first readiness fails while requests are still
// served, each answer closing its connection, so load balancers take the
// pod out and clients stop reusing connections; then http.Server.Shutdown
// stops accepting connections, and a request that still arrives on an open
// keep-alive connection gets 503 with Retry-After and Connection: close
// rather than a reset, so its client can retry elsewhere knowing nothing
// ran. It also counts the inference requests answered, which the process
// logs when it exits (what the shutdown tests compare with what clients
// received).
type gate struct {
	next     http.Handler
	state    atomic.Int32
	answered atomic.Int64 // POST requests answered, any status
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	if st >= draining && r.Method == http.MethodGet && (strings.HasSuffix(r.URL.Path, "/health/ready") || r.URL.Path == "/ping") {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost {
		g.next.ServeHTTP(w, r)
		return
	}
	defer g.answered.Add(1)
	if r.ProtoMajor != 1 {
		// HTTP/2 (gRPC over h2c) drains by its own protocol: Shutdown
		// sends GOAWAY, streams in flight finish, clients retry new ones
		// elsewhere; a JSON 503 or a Connection header has no place there.
		g.next.ServeHTTP(w, r)
		return
	}
	if st == draining {
		// No keep-alive past the drain: a client that sent its next
		// request on a connection Shutdown then closes as idle would get
		// a bare EOF (net/http does not retry a POST), a request lost
		// without an answer. Closing after each answer makes clients
		// reconnect, which the listener still accepts during the delay.
		w.Header().Set("Connection", "close")
	}
	if st == refusing {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Retry-After", "1")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"server shutting down"}` + "\n"))
		return
	}
	g.next.ServeHTTP(w, r)
}

// drain is the SIGTERM sequence: fail readiness for the drain delay while
// serving, then refuse new requests and wait up to timeout for the ones in
// flight. The models are closed after it returns (run's defers).
func drain(ctx context.Context, srv *http.Server, g *gate, rpc *grpcPort, delay, timeout time.Duration, log *slog.Logger) error {
	g.state.Store(draining)
	rpc.beginDrain()
	if delay > 0 {
		log.Info("draining: readiness fails, still serving", "delay", delay)
		time.Sleep(delay)
	}
	log.Info("shutting down: refusing new requests, finishing in-flight ones", "timeout", timeout)
	g.state.Store(refusing)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	rpcErr := make(chan error, 1)
	go func() { rpcErr <- rpc.stop(sctx, log) }()
	err := srv.Shutdown(sctx)
	log.Info("http server stopped", "answered", g.answered.Load(), "error", err)
	return errors.Join(err, <-rpcErr)
}

// pprofHandler is net/http/pprof behind the admin token: profiles reveal
// internals and cost CPU, so the debug listener is an admin route like
// any other.
func pprofHandler(token string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return admin.BearerToken(token).Protect(mux, log)
}

// serveAside serves h on a listener of its own, apart from the public
// handler (pprof, /metrics), and returns its address and a function that
// stops it.
func serveAside(addr string, h http.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("listener stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return ln.Addr().String(), func() { srv.Close(); <-done }, nil
}

package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
)

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
	if o.cacheBytes > 0 {
		opts = append(opts, cache.WithMaxBytes(o.cacheBytes))
	}
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
// flight, on every listener at once. The models are closed after it
// returns (serve's defers).
func drain(ctx context.Context, servers []*listening, timeout, delay time.Duration, log *slog.Logger) error {
	for _, s := range servers {
		s.drain()
	}
	if delay > 0 {
		log.Info("draining: readiness fails, still serving", "delay", delay)
		time.Sleep(delay)
	}
	log.Info("shutting down: refusing new requests, finishing in-flight ones", "timeout", timeout)
	for _, s := range servers {
		s.refuse()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.shutdown(sctx) })
	}
	wg.Wait()
	var answered int64
	for _, s := range servers {
		answered += s.answered()
	}
	err := errors.Join(errs...)
	log.Info("http server stopped", "answered", answered, "error", err)
	return err
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

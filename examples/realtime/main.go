// Command realtime is servekit embedded in a program of your own, in one
// file: an ONNX model, the request middleware around it, REST and gRPC on
// one port, /metrics, and a graceful shutdown.
//
//	go run ./examples/realtime                      # the demo fraud model on :8080
//	go run ./examples/realtime -addr :9000 -model m.onnx
//
// It is meant to be read, then copied. The production server, with a
// model repository, Triton's flags, separate ports, Redis, GPUs and
// drain control, is cmd/servekit (servekit serve); its code is where to
// look next.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/telemetry"
	"github.com/servekit/servekit/telemetry/promexport"
)

func main() {
	addr := flag.String("addr", ":8080", "listen address: REST, gRPC and /metrics")
	model := flag.String("model", "testdata/models/fraud.onnx", `the ONNX model, served as "fraud" (ONNX Runtime from $ONNXRUNTIME_LIB)`)
	flag.Parse()
	// SIGTERM (Kubernetes) or Ctrl-C ends ctx, which starts the shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *model, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves until ctx ends, then shuts down gracefully: main without the
// process, so the test calls it.
func run(ctx context.Context, addr, modelPath string, out io.Writer) (err error) {
	// Metrics: an OpenTelemetry MeterProvider read by a Prometheus
	// exporter, installed as the global every servekit package records to.
	metrics, err := promexport.Setup(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, metrics.Shutdown(context.WithoutCancel(ctx))) }()

	model, err := onnx.Load(modelPath, onnx.WithName("fraud"))
	if err != nil {
		return err
	}
	c, err := cache.New(cache.WithMaxEntries(100_000), cache.WithTTL(time.Minute))
	if err != nil {
		return errors.Join(err, model.Close())
	}
	defer c.Close() // after the model chain, closed below

	// The middleware, outermost first: telemetry times and counts every
	// request, cache hits and refusals included; the cache answers repeats
	// without a slot; admission control refuses (429) what would only
	// queue; the batcher merges concurrent requests into one model run.
	p := serving.Chain(
		telemetry.Middleware(),
		c.Middleware(),
		limit.Middleware(limit.WithMaxInFlight(2*64)), // two batches in flight
		batch.Middleware(batch.WithMaxBatchRows(64), batch.WithMaxDelay(time.Millisecond)),
	)(model)
	defer func() { err = errors.Join(err, serving.Close(p)) }() // closes the model too

	// REST (KServe V2, Triton's clients) and, on the same port, gRPC:
	// both serve the models registered on the REST handler's protocol
	// server. gRPC needs plaintext HTTP/2 (h2c), hence Protocols.
	rest := httpapi.New()
	if err := rest.Handle("fraud", p); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	mux.Handle("/", rest)
	srv := &http.Server{
		Handler:           grpcapi.New(rest, grpcapi.WithFallback(mux)),
		Protocols:         grpcapi.Protocols(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving fraud on http://%s (REST, gRPC, /metrics; %d cores)\n", ln.Addr(), runtime.GOMAXPROCS(0))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful: stop accepting, let the requests in flight finish (20 s at
	// most), and only then close the model chain (the defers above).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

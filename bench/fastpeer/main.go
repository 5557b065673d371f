// Command fastpeer measures what the HTTP engine costs servekit's REST path
// (issue 24 item 2: is net/http the floor of bench/http.sh?). It serves
// POST /v2/models/{name}/infer on one engine:
//
//   - nethttp: net/http with serving/httpapi, servekit's REST handler;
//   - fasthttp: github.com/valyala/fasthttp with the same V2 steps written
//     against its RequestCtx (oip.Server.Resolve, oipjson.DecodeInferRequest,
//     oip.Server.Infer, oipjson.AppendResponse, httpapi.Status for errors);
//   - raw: a hand-rolled HTTP/1.1 keep-alive loop on net.Conn (Go's netpoller,
//     so epoll underneath), the same V2 steps: the least an HTTP server can do.
//
// -handler=model runs the model (backend/onnx, one ONNX Runtime thread,
// oip's infer steps with servekit serve's 10 s --max-timeout); -handler=trivial
// reads the body and answers the model's answer to the loadgen's body,
// computed once at start, so that engine cost and handler cost can be told
// apart.
//
// The model chain is the bare model: servekit serve adds the telemetry
// middleware and the limiter, and its net/http server reads the trace context
// and timeout headers, which the fasthttp and raw engines skip (they are
// measured against -engine=nethttp, which has neither middleware either).
// The Go heap is given servekit serve's 16 MiB floor (--gc-min-heap), as GOGC
// set once from the live heap after loading.
//
// BenchmarkEngine (engine_test.go) measures the same rows in process, on an
// in-memory connection, for instruction counts (callgrind).
//
// Its own module (not in go.work: build it with GOWORK=off) keeps fasthttp
// out of servekit's go.mod; `go vet ./...` from the root does not reach it.
// bench/fastpeer.sh runs it beside servekit serve and the Node peer, driven
// as bench/http.sh drives them; by hand, from the repository root:
//
//	GOWORK=off go build -C bench/fastpeer -o ../out/fastpeer .
//	GOMAXPROCS=1 taskset -c 1 bench/out/fastpeer -engine fasthttp -addr 127.0.0.1:18082
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/serving/oip"
)

func main() {
	engine := flag.String("engine", "fasthttp", "nethttp, fasthttp or raw")
	handler := flag.String("handler", "model", "model (the V2 infer path) or trivial (a fixed answer)")
	modelPath := flag.String("model", "testdata/models/fraud.onnx", "ONNX model")
	name := flag.String("name", "fraud", "model name")
	addr := flag.String("addr", "127.0.0.1:18082", "listen address")
	ortLib := flag.String("ort-lib", os.Getenv("ONNXRUNTIME_LIB"), "ONNX Runtime library")
	flag.Parse()
	if err := run(*engine, *handler, *modelPath, *name, *addr, *ortLib); err != nil {
		log.Fatal(err)
	}
}

func run(engine, handler, modelPath, name, addr, ortLib string) error {
	opts := []onnx.Option{onnx.WithName(name), onnx.WithVersion("1"), onnx.WithIntraOpThreads(1)}
	if ortLib != "" {
		opts = append(opts, onnx.WithLibraryPath(ortLib))
	}
	m, err := onnx.Load(modelPath, opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	core := oip.NewServer()
	if err := core.Handle(name, m, oip.Version("1")); err != nil {
		return err
	}
	a, err := newApp(core, name, handler == "trivial")
	if err != nil {
		return err
	}
	gcFloor(16 << 20)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var serve func(net.Listener) error
	switch engine {
	case "nethttp":
		serve = a.serveNetHTTP
	case "fasthttp":
		serve = a.serveFastHTTP
	case "raw":
		serve = a.serveRaw
	default:
		return fmt.Errorf("-engine %q: want nethttp, fasthttp or raw", engine)
	}
	fmt.Printf("fastpeer %s/%s serving %s on http://%s/v2/models/%s/infer\n", engine, handler, modelPath, ln.Addr(), name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); ln.Close() }()
	if err := serve(ln); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// gcFloor sets GOGC so that the heap goal is at least floor bytes, as
// servekit serve's --gc-min-heap does (once here: the live heap of a bench
// server does not grow).
func gcFloor(floor uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if live := ms.HeapAlloc; live > 0 && floor > 2*live {
		debug.SetGCPercent(int(floor*100/live - 100))
	}
}

// app is the V2 infer path written once for the fasthttp and raw engines:
// what serving/httpapi does for a POST to the infer route, without
// net/http's types.
type app struct {
	core    *oip.Server
	name    string
	path    string
	trivial bool
	answer  []byte // the model's answer to the loadgen's body, for -handler=trivial
}

const maxBody = 16 << 20 // servekit serve's --max-body

func newApp(core *oip.Server, name string, trivial bool) (*app, error) {
	a := &app{core: core, name: name, path: "/v2/models/" + name + "/infer"}
	body := []byte(`{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`)
	st, _, out := a.infer(body, -1, nil)
	if st != 200 {
		return nil, fmt.Errorf("warm-up request: %d %s", st, out)
	}
	a.answer, a.trivial = out, trivial
	return a, nil
}

// route answers what is not the infer route, as servekit does (a JSON
// error body); ok says the request is for the infer route.
func (a *app) route(method, path []byte) (status int, body []byte, ok bool) {
	switch {
	case string(path) == "/v2/health/ready" || string(path) == "/v2/health/live":
		return 200, nil, false
	case string(path) != a.path:
		return 404, []byte(`{"error":"not found"}` + "\n"), false
	case string(method) != "POST":
		return 405, []byte(`{"error":"method not allowed"}` + "\n"), false
	}
	return 0, nil, true
}

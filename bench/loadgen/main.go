// Command loadgen is a closed-loop load generator for V2 JSON over HTTP and
// for the gRPC ModelInfer RPC: a fixed number of clients each send a
// request, wait for the answer, and send the next, for a fixed duration (and
// at most -max-requests in all). It reports throughput, p50/p90/p99 latency
// and errors. It only targets loopback addresses, so it cannot be pointed at
// someone else's server.
//
//	go run ./bench/loadgen -url http://127.0.0.1:8080/v2/models/fraud/infer -c 64 -d 10s
//	go run ./bench/loadgen -grpc -url http://127.0.0.1:8080 -model fraud -c 64 -d 10s
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBody is the fraud model's V2 request: one row of 8 features.
const DefaultBody = `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Result is one run's summary.
type Result struct {
	Name             string
	Requests, Errors int64
	Elapsed          time.Duration
	P50, P90, P99    time.Duration
	Throughput       float64 // successful requests per second
	FirstErr         string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("url", "", "loopback URL to POST to")
	conc := fs.Int("c", 64, "concurrent clients")
	dur := fs.Duration("d", 10*time.Second, "duration of the measured run")
	warm := fs.Duration("warmup", time.Second, "unmeasured warm-up before the run")
	maxReq := fs.Int64("max-requests", 10_000_000, "stop after this many requests")
	body := fs.String("body", DefaultBody, "request body")
	name := fs.String("name", "", "label for the result line")
	useGRPC := fs.Bool("grpc", false, "call gRPC ModelInfer on -url's host:port instead of POSTing -body")
	g := grpcFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*target); err != nil {
		return err
	}
	if *conc < 1 || *conc > 4096 || *dur <= 0 || *dur > 10*time.Minute {
		return errors.New("want 1 <= -c <= 4096 and 0 < -d <= 10m")
	}
	if *g.rows < 1 || *g.rows > 1<<16 {
		return errors.New("want 1 <= -rows <= 65536")
	}
	if *body == DefaultBody && *g.rows > 1 {
		*body = fraudBody(*g.rows)
	}
	newCaller, closeAll := httpCallers(*target, []byte(*body), *conc)
	if *useGRPC {
		var err error
		if newCaller, closeAll, err = g.callers(*target); err != nil {
			return err
		}
	}
	defer closeAll()
	if *warm > 0 {
		load(ctx, newCaller, *conc, *warm, *maxReq)
	}
	cpu0 := cpuTime()
	r := load(ctx, newCaller, *conc, *dur, *maxReq)
	r.Name = *name
	// The generator's own CPU per answer (all its threads, user and
	// system), next to the server's that bench/grpc.sh adds: the side
	// nearer a whole core per answer bounds the line.
	var clientCPU float64
	if r.Requests > 0 {
		clientCPU = float64(cpuTime()-cpu0) / float64(time.Microsecond) / float64(r.Requests)
	}
	fmt.Fprintf(out, "%s c=%d requests=%d errors=%d elapsed=%.2fs throughput=%.0f req/s p50=%s p90=%s p99=%s client_cpu=%.1fµs/req\n",
		r.Name, *conc, r.Requests, r.Errors, r.Elapsed.Seconds(), r.Throughput, r.P50, r.P90, r.P99, clientCPU)
	if r.FirstErr != "" {
		fmt.Fprintf(out, "%s first error: %s\n", r.Name, r.FirstErr)
	}
	return nil
}

func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("-url %q: want an http URL", target)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url %q: only loopback targets are allowed", target)
	}
	return nil
}

// caller sends one request and waits for its answer; each client has its
// own, so it may keep buffers.
type caller func(ctx context.Context) error

// httpCallers POSTs body to target over keep-alive connections, one per
// client at most.
func httpCallers(target string, body []byte, conc int) (newCaller func() caller, closeAll func()) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return func() caller {
		buf := make([]byte, 0, 4096)
		return func(ctx context.Context) error { return once(ctx, client, target, body, &buf) }
	}, tr.CloseIdleConnections
}

func load(ctx context.Context, newCaller func() caller, conc int, dur time.Duration, maxReq int64) Result {
	// The run ends by cancellation, not a deadline: a deadline would go
	// out with every gRPC call (grpc-timeout, a timer on the server) where
	// the HTTP requests carry none, and grpc-go's server ends calls at it a
	// moment before the callers' context, which they would count as errors.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := time.AfterFunc(dur, cancel)
	defer stop.Stop()
	var sent, errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conc {
		call := newCaller() // here, not in the goroutine: newCaller need not be concurrency-safe
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil && sent.Add(1) <= maxReq {
				t0 := time.Now()
				err := call(ctx)
				if ctx.Err() != nil {
					break // cut off by the end of the run: not counted
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			lats[i] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	r := Result{Requests: int64(len(all)), Errors: errs.Load(), Elapsed: elapsed}
	r.Throughput = float64(len(all)) / elapsed.Seconds()
	r.P50, r.P90, r.P99 = pct(all, 50), pct(all, 90), pct(all, 99)
	if e, ok := firstErr.Load().(string); ok {
		r.FirstErr = e
	}
	return r
}

func once(ctx context.Context, c *http.Client, target string, body []byte, buf *[]byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b := bytes.NewBuffer((*buf)[:0])
	_, err = b.ReadFrom(resp.Body)
	*buf = b.Bytes()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b.Bytes())
	}
	return nil
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100].Round(time.Microsecond)
}

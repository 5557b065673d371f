package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/poll"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// ortLib finds ONNX Runtime, or skips unless SERVEKIT_REQUIRE_ORT=1.
func ortLib(t *testing.T) string {
	t.Helper()
	return orttest.Library(t)
}

// lineWriter hands each line run prints to a channel, so the test learns
// the address and curl line, and keeps them all in out.
type lineWriter struct {
	lines chan string
	out   *output
}

// output is everything run printed, for the tests that read the log.
type output struct {
	mu    sync.Mutex
	lines []string
}

func (o *output) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.lines)
}

func (w lineWriter) Write(p []byte) (int, error) {
	// Every line of a write is kept before any is handed over: a test that
	// returns on one line reads the lines printed with it from out.
	lines := strings.Split(strings.TrimRight(string(p), "\n"), "\n")
	w.out.mu.Lock()
	w.out.lines = append(w.out.lines, lines...)
	w.out.mu.Unlock()
	for _, l := range lines {
		select {
		case w.lines <- l:
		default: // nobody reading: drop log lines
		}
	}
	return len(p), nil
}

// serveArgs runs servekit serve with args on loopback ports of the
// system's choosing: REST, gRPC and /metrics all on one (each port 0, so
// the same as --http-port); args given later win.
func serveArgs(ctx context.Context, args []string, out io.Writer) error {
	fixed := []string{"serve", "--http-address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"}
	return run(ctx, append(fixed, args...), nil, out, out)
}

// freePort is a loopback port free a moment ago, for a listener a test
// needs apart from --http-port 0's.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(t *testing.T, args ...string) (base, curl string, stop func()) {
	t.Helper()
	base, curl, _, stop = startOut(t, args...)
	return base, curl, stop
}

// startOut is start that also gives what run prints.
func startOut(t *testing.T, args ...string) (base, curl string, printed *output, stop func()) {
	t.Helper()
	lib := ortLib(t)
	ctx, cancel := context.WithCancel(context.Background())
	printed = &output{}
	out := lineWriter{make(chan string, 64), printed}
	done := make(chan error, 1)
	fixed := []string{"--ort-lib", lib}
	if !slices.Contains(args, "--model-repository") {
		fixed = append(fixed, "--model", "fraud=../../testdata/models/fraud.onnx")
	}
	args = append(fixed, args...)
	go func() { done <- serveArgs(ctx, args, out) }()
	re := regexp.MustCompile(`http://(\S+) `)
	timeout := time.After(60 * time.Second)
	for base == "" || curl == "" {
		select {
		case l := <-out.lines:
			if m := re.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "serving") {
				base = "http://" + m[1]
			}
			if strings.HasPrefix(l, "curl ") {
				curl = l
			}
		case err := <-done:
			cancel()
			t.Fatalf("run ended early: %v", err)
		case <-timeout:
			cancel()
			t.Fatal("server did not start")
		}
	}
	return base, curl, printed, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	}
}

// curlRequest turns the printed curl line into the same HTTP request.
func curlRequest(t *testing.T, curl string) (url, body string) {
	m := regexp.MustCompile(`-d '([^']*)' (\S+)$`).FindStringSubmatch(curl)
	if m == nil {
		t.Fatalf("cannot read curl line %q", curl)
	}
	return m[2], m[1]
}

func checkScore(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var r struct {
		Outputs []struct {
			Name string
			Data []float64
		}
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Outputs) != 1 || len(r.Outputs[0].Data) != 1 {
		t.Fatalf("answer %s: %v", b, err)
	}
	if s := r.Outputs[0].Data[0]; r.Outputs[0].Name != "score" || !(s > 0 && s < 1) {
		t.Errorf("score %v from %s", s, b)
	}
}

func TestEndToEnd(t *testing.T) {
	base, curl, stop := start(t)
	defer stop()
	url, body := curlRequest(t, curl)
	if !strings.HasPrefix(url, base) {
		t.Errorf("curl line targets %s, server is %s", url, base)
	}
	checkScore(t, url, body)
	for path, want := range map[string]int{"/v2/health/ready": 200, "/v2/models/fraud": 200, "/v2/models/nope": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "go_goroutine") && !strings.Contains(string(m), "go_memory") {
		t.Errorf("/metrics has no runtime metrics:\n%.400s", m)
	}
}

func TestEndToEndBatchCache(t *testing.T) {
	_, curl, stop := start(t, "--batch", "--cache")
	defer stop()
	url, body := curlRequest(t, curl)
	checkScore(t, url, body)
	checkScore(t, url, body) // a cache hit answers the same
}

// TestSlowHeaders: a client that never finishes its headers is closed after
// ReadHeaderTimeout while others are served.
func TestSlowHeaders(t *testing.T) {
	base, curl, stop := start(t, "--read-header-timeout", "200ms")
	defer stop()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n")
	url, body := curlRequest(t, curl)
	checkScore(t, url, body)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = bufio.NewReader(conn).ReadString(0)
	if ne, ok := err.(net.Error); err == nil || (ok && ne.Timeout()) {
		t.Errorf("slow client not closed: %v", err)
	}
}

// TestGracefulShutdown: a request in flight when the server is told to stop
// still gets its answer.
func TestGracefulShutdown(t *testing.T) {
	// Not adaptive: the lone request waits the whole max delay in the batch
	// queue, so it is surely in flight when the server is told to stop.
	base, curl, stop := start(t, "--batch", "--batch-adaptive=false", "--batch-max-delay", "500ms", "--batch-max-rows", "1000")
	url, body := curlRequest(t, curl)
	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	waitInflight(t, base, got)
	stop()
	if code := <-got; code != 200 {
		t.Errorf("in-flight request got %d during shutdown", code)
	}
}

// waitInflight waits until the server counts a request in flight (its
// servekit_requests_inflight gauge): a fixed sleep is not enough on a loaded
// CI machine, where the request may not have arrived yet when the server is
// told to stop. It fails the test if the request is answered first.
func waitInflight(t *testing.T, base string, answered <-chan int) {
	t.Helper()
	poll.Until(t, "the request in flight", func() bool {
		select {
		case code := <-answered:
			t.Fatalf("the request was answered (%d) before it was seen in flight", code)
		default:
		}
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); strings.HasPrefix(line, "servekit_requests_inflight{") && len(f) > 0 && f[len(f)-1] != "0" {
				return true
			}
		}
		return false
	})
}

package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the main package pkg (an import path, or a directory such
// as "../cmd/servekit") once per test binary and returns the path of
// the executable.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "servekit-loadtest-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Server is a running server process. Its methods are safe for concurrent
// use.
type Server struct {
	// Base is the server's root URL, http://127.0.0.1:port.
	Base string
	// Debug is the root of the server's pprof listener (--debug-addr), if
	// it printed one.
	Debug string
	token string // the --admin-token the pprof listener wants
	cmd   *exec.Cmd
	mu    sync.Mutex // guards Debug while the output is read
	out   *syncBuffer
	done  chan struct{} // closed when the process has exited
	err   error         // Wait's error, set before done closes
}

// Start runs bin serve with args after flags that put REST, gRPC and
// /metrics on one loopback port of the system's choosing (servekit
// serve's --http-port 0, with --grpc-port and --metrics-port the same),
// waits until it prints
// the address it serves on and answers /v2/health/ready, and stops it (if
// still running) when the test ends. With SERVEKIT_SERVER_CPUS set (a
// taskset CPU list, such as "1") the server is pinned to those CPUs, so a
// load generator pinned elsewhere does not steal its cores.
func Start(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	argv := append([]string{bin, "serve", "--http-address", "127.0.0.1", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"}, args...)
	if cpus := os.Getenv("SERVEKIT_SERVER_CPUS"); cpus != "" {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", cpus}, argv...)
		}
	}
	s := &Server{out: &syncBuffer{}, done: make(chan struct{})}
	if i := slices.Index(args, "--admin-token"); i >= 0 && i+1 < len(args) {
		s.token = args[i+1]
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	pr, pw := io.Pipe()
	s.cmd.Stdout = pw
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	addr := make(chan string, 1)
	go func() { // copies the output until the process ends
		re := regexp.MustCompile(`^serving .* on (http://\S+)`)
		debug := regexp.MustCompile(`^debug on (http://[^/]+)/`)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.out.writeLine(line)
			if m := debug.FindStringSubmatch(line); m != nil {
				s.setDebug(m[1])
			}
			if m := re.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { s.Kill() })
	select {
	case s.Base = <-addr:
	case <-s.done:
		t.Fatalf("server exited early: %v\n%s", s.err, s.Output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("server did not start\n%s", s.Output())
	}
	if err := s.WaitReady(30 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, s.Output())
	}
	return s
}

// WaitReady polls /v2/health/ready until it answers 200.
func (s *Server) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.Base + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("loadtest: %s not ready after %v", s.Base, timeout)
}

// PID is the server's process id (taskset execs in place, so it is the
// server's own).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// RSS reads the process's resident set size from /proc.
func (s *Server) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("loadtest: no VmRSS in /proc status")
}

// Goroutines counts the server's goroutines now: from its pprof listener
// when it has one (exact), else go_goroutine_count from /metrics, which
// OpenTelemetry's runtime instrumentation refreshes only every 15 s.
func (s *Server) Goroutines() (int64, error) {
	if d := s.debugRoot(); d != "" {
		req, _ := http.NewRequest(http.MethodGet, d+"/debug/pprof/goroutine?debug=1", nil)
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("loadtest: pprof answered %s (pass --admin-token to Start)", resp.Status)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil {
			return 0, err
		}
		n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
		if !ok {
			return 0, fmt.Errorf("loadtest: goroutine profile starts %q", line)
		}
		return strconv.ParseInt(n, 10, 64)
	}
	v, err := s.Metric("go_goroutine_count", "")
	return int64(v), err
}

func (s *Server) setDebug(root string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Debug = root
}

func (s *Server) debugRoot() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Debug
}

// Metric scrapes /metrics and sums the samples of the named metric whose
// label text contains match ("" matches all).
func (s *Server) Metric(name, match string) (float64, error) {
	resp, err := http.Get(s.Base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return MetricValue(b, name, match)
}

// MetricValue sums the samples of metric name in Prometheus text b whose
// labels contain match.
func MetricValue(b []byte, name, match string) (float64, error) {
	var sum float64
	found := false
	for line := range bytes.Lines(b) {
		l := string(bytes.TrimSpace(line))
		rest, ok := strings.CutPrefix(l, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if match != "" && !strings.Contains(rest, match) {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: %s: %w", l, err)
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("loadtest: no metric %s{%s}", name, match)
	}
	return sum, nil
}

// Signal sends sig to the server.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Wait waits for the process to exit and returns its exit code (-1 when it
// was killed by a signal), or an error when ctx ends first.
func (s *Server) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode(), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Stop sends SIGTERM and waits up to a minute for the exit code.
func (s *Server) Stop() (int, error) {
	if err := s.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.Wait(ctx)
}

// Kill ends the process at once, if it still runs, and waits for it.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Output is everything the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// syncBuffer is a line log safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) writeLine(l string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(l)
	b.buf.WriteByte('\n')
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Package redistest runs a throwaway redis-server for tests: on a free
// loopback port, without persistence, stopped in t.Cleanup. When
// redis-server is not installed the test is skipped, unless
// SERVEKIT_REQUIRE_REDIS=1 or SERVEKIT_REQUIRE_ORT=1 (CI), which make it fail.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process. Its methods are for the test goroutine.
type Server struct {
	// Addr is host:port; it stays the same across Stop and Start.
	Addr string
	t    testing.TB
	bin  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a redis-server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SERVEKIT_REQUIRE_REDIS") == "1" || os.Getenv("SERVEKIT_REQUIRE_ORT") == "1" {
			t.Fatalf("redistest: redis-server not found (apt-get install -y redis-server): %v", err)
		}
		t.Skip("redistest: redis-server not installed; skipping (set SERVEKIT_REQUIRE_REDIS=1 to fail instead)")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	// A free port can be taken by someone else between our probe and
	// redis's bind: try a few.
	for range 5 {
		s.Addr = freeAddr(t)
		if s.start() == nil {
			return s
		}
	}
	t.Fatalf("redistest: redis-server did not start")
	return nil
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start restarts a stopped server on the same address.
func (s *Server) Start() {
	s.t.Helper()
	for range 20 { // the port may linger briefly after Stop
		if err := s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: redis-server did not restart on %s", s.Addr)
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited")
		default:
		}
		if ping(s.Addr) {
			s.cmd, s.done = cmd, done
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server on %s did not answer PING", s.Addr)
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Stop kills the server and waits for it; it is idempotent.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Client returns a client of the server that honours context deadlines, as
// the cache requires, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  s.Addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1, // a test wants to see each failure
	})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Do runs one command on a fresh connection, for test set-up such as
// CLIENT PAUSE, and returns its reply line.
func (s *Server) Do(args ...string) string {
	s.t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	defer c.Close()
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		s.t.Fatalf("redistest: %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(line)
}

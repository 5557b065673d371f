// Package httpbench measures what an http.Handler costs a real net/http
// server per request, without sockets or a client: Serve hands an
// http.Server one in-memory connection that carries b.N copies of a raw
// HTTP/1.1 request, one per read as a closed-loop client sends them, and
// discards the answers. What it times is net/http's own work (request
// parsing, the response writer, the background read that watches for the
// client going away, the flush) plus the handler's; the loopback syscalls
// and the client are left out, so a handler's cost stands out from the
// floor (Fixed: a bare handler that reads the body and writes a fixed
// answer) that every handler shares. Benchmarks put both in one run and
// compare them with benchstat.
package httpbench

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Request is the raw HTTP/1.1 POST of body to path with the headers Go's
// client sends (bench/loadgen's: keep-alive, no compression).
func Request(path, body string) []byte {
	return []byte("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nContent-Type: application/json\r\n\r\n" + body)
}

// Serve serves b.N copies of req on one connection through an http.Server
// (read and write timeouts set, as a production server has them) with h,
// and fails b unless every answer is 200. It reports allocations.
func Serve(b *testing.B, h http.Handler, req []byte) {
	b.Helper()
	c := newConn(req, b.N)
	ln := &listener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	srv := &http.Server{Handler: h, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.ResetTimer()
	ln.conns <- c
	<-c.closed
	b.StopTimer()
	_ = srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		b.Fatal(err)
	}
	if c.bad != "" {
		b.Fatalf("answer not 200: %.300q", c.bad)
	}
	if c.answers != b.N {
		b.Fatalf("%d answers to %d requests", c.answers, b.N)
	}
}

// Fixed is the floor: a handler that reads the body, as every infer
// handler must, and writes answer as application/json, setting the two
// headers the way a careful handler does (Header().Set).
func Fixed(answer []byte) http.Handler {
	n := strconv.Itoa(len(answer))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", n)
		w.WriteHeader(http.StatusOK)
		w.Write(answer)
	})
}

// conn is a client that sends req left times and hangs up once the last
// answer is out. A read that finds the next request not yet due (the
// background read net/http starts after a body) gets its first byte at
// once, as from a pipelining client, rather than waiting for the answer:
// a read that waits parks a goroutine in both the floor and the handler
// measured, so leaving it out hides nothing between them.
type conn struct {
	req     []byte
	n       int // requests to send
	left    int // requests not yet started
	off     int // read offset in the current request; 0: none started
	answers int
	bad     string
	mu      sync.Mutex
	last    chan struct{} // closed when the last answer is out
	closed  chan struct{}
	once    sync.Once
}

func newConn(req []byte, n int) *conn {
	return &conn{req: req, n: n, left: n, last: make(chan struct{}), closed: make(chan struct{})}
}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off == 0 {
		if c.left == 0 {
			// Hang up only after the last answer, as a client does: an
			// EOF while a request is served cancels its context.
			c.mu.Unlock()
			<-c.last
			c.mu.Lock()
			return 0, io.EOF
		}
		c.left--
	}
	n := copy(p, c.req[c.off:])
	c.off += n
	if c.off == len(c.req) {
		c.off = 0
	}
	return n, nil
}

// Write takes one answer: net/http flushes an answer of up to 4 KiB in
// one write, and Serve's callers answer less.
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers++
	if c.answers == c.n {
		close(c.last)
	}
	if c.bad == "" && !bytes.HasPrefix(p, []byte("HTTP/1.1 200 ")) {
		c.bad = string(p)
	}
	return len(p), nil
}

func (c *conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 18080}

func (c *conn) LocalAddr() net.Addr                { return addr }
func (c *conn) RemoteAddr() net.Addr               { return addr }
func (c *conn) SetDeadline(t time.Time) error      { return nil }
func (c *conn) SetReadDeadline(t time.Time) error  { return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { return nil }

// listener accepts the connections sent on conns until Close.
type listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *listener) Addr() net.Addr { return addr }

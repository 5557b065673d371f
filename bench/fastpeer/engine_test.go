package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip"
)

// BenchmarkEngine is each engine's own work per request without sockets
// or a client (as serving/httpapi's BenchmarkServe measures net/http): one
// in-memory connection carries b.N requests, one per read, as a closed-loop
// client sends them. trivial is the engine alone (read the body, write a
// fixed answer); model adds servekit's V2 path and the fraud model. Compare
// by instructions (valgrind --tool=callgrind, two -benchtime Nx subtracted):
// the machine is shared.
func BenchmarkEngine(b *testing.B) {
	m, err := onnx.Load("../../testdata/models/fraud.onnx", onnx.WithName("fraud"), onnx.WithVersion("1"),
		onnx.WithLibraryPath(os.Getenv("ONNXRUNTIME_LIB")))
	if err != nil {
		b.Skip("ONNX Runtime:", err)
	}
	defer m.Close()
	core := oip.NewServer()
	if err := core.Handle("fraud", m, oip.Version("1")); err != nil {
		b.Fatal(err)
	}
	body := `{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}]}`
	req := []byte("POST /v2/models/fraud/infer HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nContent-Type: application/json\r\n\r\n" + body)
	for _, handler := range []string{"trivial", "model"} {
		a, err := newApp(core, "fraud", handler == "trivial")
		if err != nil {
			b.Fatal(err)
		}
		b.Run("nethttp/"+handler, func(b *testing.B) {
			var h http.Handler = httpapi.New(httpapi.WithServer(core), httpapi.WithMaxBodyBytes(maxBody), httpapi.WithMaxTimeout(10*time.Second))
			if a.trivial {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					w.Header()["Content-Type"] = typeJSON
					w.Write(a.answer)
				})
			}
			srv := &http.Server{Handler: h, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
			serveConn(b, req, func(c net.Conn) {
				ln := &oneListener{c: c, done: make(chan struct{})}
				srv.Serve(ln)
			})
			srv.Close()
		})
		b.Run("fasthttp/"+handler, func(b *testing.B) {
			srv := &fasthttp.Server{Handler: a.fastInfer, MaxRequestBodySize: maxBody, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
			serveConn(b, req, func(c net.Conn) { srv.ServeConn(c) })
		})
		b.Run("raw/"+handler, func(b *testing.B) {
			serveConn(b, req, a.rawConn)
		})
	}
}

// serveConn hands serve a connection carrying b.N copies of req and waits
// until it has answered all of them.
func serveConn(b *testing.B, req []byte, serve func(net.Conn)) {
	c := &memConn{req: req, left: b.N, n: b.N, last: make(chan struct{})}
	b.ReportAllocs()
	b.ResetTimer()
	go serve(c)
	<-c.last
	b.StopTimer()
	if c.bad != "" {
		b.Fatalf("answer not 200: %.300q", c.bad)
	}
}

// memConn is a client that sends req left times, one per read, and hangs
// up once the last answer is out (serving/httpapi's BenchmarkServe's
// connection: internal/httpbench).
type memConn struct {
	mu          sync.Mutex
	req         []byte
	off         int
	left, n     int
	answers     int
	bad         string
	last        chan struct{}
	lastOnce    sync.Once
	closeSignal sync.Once
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off == 0 {
		if c.left == 0 {
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

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := bytes.Count(p, []byte("HTTP/1.1 "))
	if c.bad == "" && !bytes.HasPrefix(p, []byte("HTTP/1.1 200 ")) {
		c.bad = string(p)
	}
	c.answers += k
	if c.answers >= c.n {
		c.lastOnce.Do(func() { close(c.last) })
	}
	return len(p), nil
}

func (c *memConn) Close() error                       { c.lastOnce.Do(func() { close(c.last) }); return nil }
func (c *memConn) LocalAddr() net.Addr                { return loopback }
func (c *memConn) RemoteAddr() net.Addr               { return loopback }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 18080}

// oneListener accepts c once, then blocks until closed.
type oneListener struct {
	c    net.Conn
	done chan struct{}
	once sync.Once
}

func (l *oneListener) Accept() (net.Conn, error) {
	if c := l.c; c != nil {
		l.c = nil
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneListener) Addr() net.Addr { return loopback }

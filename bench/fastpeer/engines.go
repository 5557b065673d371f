package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

var (
	typeJSON   = []string{"application/json"}
	typeBinary = []string{"application/octet-stream"}
)

// serveNetHTTP is servekit's REST path: httpapi behind an http.Server set
// up as servekit serve sets it up (HTTP/1.1 here: the loadgen speaks it).
func (a *app) serveNetHTTP(ln net.Listener) error {
	var h http.Handler = httpapi.New(httpapi.WithServer(a.core), httpapi.WithMaxBodyBytes(maxBody), httpapi.WithMaxTimeout(10*time.Second))
	if a.trivial {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bp := oipjson.Buffer()
			b, err := readBody(r.Body, (*bp)[:0])
			*bp = b
			oipjson.PutBuffer(bp)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header()["Content-Type"] = typeJSON
			w.Write(a.answer)
		})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	return srv.Serve(ln)
}

func readBody(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// serveFastHTTP is the same V2 path on fasthttp, with servekit serve's body
// limit and header timeout.
func (a *app) serveFastHTTP(ln net.Listener) error {
	srv := &fasthttp.Server{
		Handler:            a.fastInfer,
		MaxRequestBodySize: maxBody,
		ReadTimeout:        5 * time.Second,
		IdleTimeout:        2 * time.Minute,
		Name:               "fastpeer",
	}
	return srv.Serve(ln)
}

func (a *app) fastInfer(ctx *fasthttp.RequestCtx) {
	if st, body, ok := a.route(ctx.Method(), ctx.Path()); !ok {
		ctx.SetStatusCode(st)
		if body != nil {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		}
		return
	}
	jsonLen, bad := binaryHeader(ctx.Request.Header.Peek(httpapi.HeaderContentLength), len(ctx.PostBody()))
	bp := oipjson.Buffer()
	var st, bin int
	var b []byte
	if bad {
		st, bin, b = 400, -1, append((*bp)[:0], `{"error":"bad Inference-Header-Content-Length"}`+"\n"...)
	} else {
		st, bin, b = a.infer(ctx.PostBody(), jsonLen, (*bp)[:0])
	}
	ctx.SetStatusCode(st)
	if bin >= 0 {
		ctx.Response.Header.Set(httpapi.HeaderContentLength, strconv.Itoa(bin))
		ctx.SetContentType(typeBinary[0])
	} else {
		ctx.SetContentType(typeJSON[0])
	}
	ctx.SetBody(b) // copies
	*bp = b
	oipjson.PutBuffer(bp)
}

// binaryHeader reads Inference-Header-Content-Length as httpapi does.
func binaryHeader(v []byte, bodyLen int) (n int, bad bool) {
	if len(v) == 0 {
		return -1, false
	}
	n, err := strconv.Atoi(string(v))
	return n, err != nil || n < 0 || n > bodyLen
}

// serveRaw is a hand-rolled HTTP/1.1 keep-alive server: one goroutine per
// connection on Go's netpoller, a 4 KiB read and write buffer, requests with
// a Content-Length body, answers flushed when no further request is
// buffered. No chunked bodies, no Expect: 100-continue, no timeouts, no Date
// header: enough for the loadgen and curl, not for the world. It shows what
// is left when the engine does almost nothing.
func (a *app) serveRaw(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go a.rawConn(c)
	}
}

func (a *app) rawConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	var method, path, binHdr []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		sp1 := bytes.IndexByte(line, ' ')
		sp2 := bytes.LastIndexByte(line, ' ')
		if sp1 <= 0 || sp2 <= sp1 {
			return
		}
		method = append(method[:0], line[:sp1]...)
		path = append(path[:0], line[sp1+1:sp2]...)
		length, closing := 0, false
		binHdr = binHdr[:0]
		for headers := 0; ; headers++ {
			h, err := br.ReadSlice('\n')
			if err != nil || headers > 100 {
				return
			}
			h = bytes.TrimRight(h, "\r\n")
			if len(h) == 0 {
				break
			}
			k, v, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				return
			}
			v = bytes.TrimSpace(v)
			switch {
			case bytes.EqualFold(k, []byte("Content-Length")):
				if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
					return
				}
			case bytes.EqualFold(k, []byte("Connection")):
				closing = bytes.EqualFold(v, []byte("close"))
			case bytes.EqualFold(k, []byte(httpapi.HeaderContentLength)):
				binHdr = append(binHdr, v...)
			}
		}
		if length > maxBody {
			writeRaw(bw, 413, -1, []byte(`{"error":"request body too large"}`+"\n"))
			bw.Flush()
			return
		}
		bp := oipjson.Buffer()
		body, err := readN(br, (*bp)[:0], length)
		if err != nil {
			*bp = body
			oipjson.PutBuffer(bp)
			return
		}
		st, b, ok := a.route(method, path)
		bin := -1
		*bp = body[:0]
		if ok {
			if n, bad := binaryHeader(binHdr, len(body)); bad {
				st, b = 400, []byte(`{"error":"bad Inference-Header-Content-Length"}`+"\n")
			} else {
				// The body is decoded before the answer is appended:
				// the answer goes into the same buffer, as in httpapi.
				st, bin, b = a.infer(body, n, body[:0])
				*bp = b[:0]
			}
		}
		writeRaw(bw, st, bin, b)
		oipjson.PutBuffer(bp)
		if closing || br.Buffered() == 0 {
			if bw.Flush() != nil || closing {
				return
			}
		}
	}
}

// readN appends n bytes from r to b, growing b as they arrive, never
// from the Content-Length a client claims.
func readN(r io.Reader, b []byte, n int) ([]byte, error) {
	end := len(b) + n
	for len(b) < end {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := r.Read(b[len(b):min(cap(b), end)])
		b = b[:len(b)+m]
		if err != nil && len(b) < end {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return b, err
		}
	}
	return b, nil
}

func writeRaw(bw *bufio.Writer, status, bin int, b []byte) {
	var scratch [20]byte
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(scratch[:0], int64(status), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(status))
	if bin >= 0 {
		bw.WriteString("\r\nContent-Type: application/octet-stream\r\n" + httpapi.HeaderContentLength + ": ")
		bw.Write(strconv.AppendInt(scratch[:0], int64(bin), 10))
	} else {
		bw.WriteString("\r\nContent-Type: application/json")
	}
	bw.WriteString("\r\nContent-Length: ")
	bw.Write(strconv.AppendInt(scratch[:0], int64(len(b)), 10))
	bw.WriteString("\r\n\r\n")
	bw.Write(b)
}

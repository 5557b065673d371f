package reliability_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/servekit/servekit/internal/loadtest"
)

// Rows 1-6 of issue 18: requests whose decoding cost more than their bytes.

var _ = addAttacks(
	attack{row: "1", what: "V1 instances [[0],…], 415 B", send: func(t *testing.T, srv *loadtest.Server) []sent {
		return postConcurrently(srv.Base+"/v1/models/fraud:predict", 4, instances(415))
	}},
	attack{row: "1", what: "V1 instances [[0],…], four 64 KB bodies", send: func(t *testing.T, srv *loadtest.Server) []sent {
		return postConcurrently(srv.Base+"/v1/models/fraud:predict", 4, instances(64<<10))
	}},
	attack{row: "1", what: "SageMaker instances [[0],…], four 128 KB bodies", args: []string{"--sagemaker"}, send: func(t *testing.T, srv *loadtest.Server) []sent {
		return postConcurrently(srv.Base+"/invocations", 4, instances(128<<10))
	}},
	attack{row: "1b", what: "V2 shape [65536] with one value, repeated, 1.2 MB", send: func(t *testing.T, srv *loadtest.Server) []sent {
		var b strings.Builder
		b.WriteString(`{"inputs":[`)
		for i := 0; b.Len() < 1200_000; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"i%d","datatype":"FP32","shape":[65536],"data":[0]}`, i)
		}
		b.WriteString("]}")
		return postConcurrently(srv.Base+"/v2/models/fraud/infer", 1, []byte(b.String()))
	}},
	attack{row: "2", what: "BYTES shape [4194304], binary_data_size 0, 40 at once", send: func(t *testing.T, srv *loadtest.Server) []sent {
		js := `{"inputs":[{"name":"features","shape":[4194304],"datatype":"BYTES","parameters":{"binary_data_size":0}}]}`
		c := &http.Client{Timeout: 10 * time.Second}
		defer c.CloseIdleConnections()
		return concurrently(40, func(int) sent {
			return sent{len(js), statusText(post(c, srv.Base+"/v2/models/fraud/infer", []byte(js), "Inference-Header-Content-Length", strconv.Itoa(len(js))))}
		})
	}},
	attack{row: "3", what: `inputs [{},{},…], 3 MB`, send: func(t *testing.T, srv *loadtest.Server) []sent {
		return postConcurrently(srv.Base+"/v2/models/fraud/infer", 1, emptyInputs(3<<20))
	}},
	attack{row: "3", what: `inputs [{},{},…], 16.5 MB`, send: func(t *testing.T, srv *loadtest.Server) []sent {
		return postConcurrently(srv.Base+"/v2/models/fraud/infer", 1, emptyInputs(16_500_000))
	}},
	attack{row: "4", what: "60,000 valid empty inputs, 3.4 MB", send: func(t *testing.T, srv *loadtest.Server) []sent {
		var b strings.Builder
		b.WriteString(`{"inputs":[`)
		for i := range 60000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"i%d","datatype":"FP32","shape":[0],"data":[]}`, i)
		}
		b.WriteString("]}")
		return postConcurrently(srv.Base+"/v2/models/fraud/infer", 1, []byte(b.String()))
	}},
	attack{row: "5", what: "256 connections declare Content-Length 16 MiB, send headers only (-read-timeout 2s)",
		args: []string{"--read-timeout", "2s"}, within: 4 * time.Second, send: headersOnly},
	attack{row: "6", what: "gRPC message of 16 MB of empty inputs", setup: func() { emptyInputsMessage() }, send: func(t *testing.T, srv *loadtest.Server) []sent {
		return []sent{{len(emptyInputsMessage()), grpcInfer(srv, emptyInputsMessage(), false)}}
	}},
	attack{row: "6", what: "gRPC message of 1 MB gzip, 1 GiB inflated", setup: func() { gzipBomb() }, send: func(t *testing.T, srv *loadtest.Server) []sent {
		return []sent{{4 << 20, grpcInfer(srv, gzipBomb(), true)}} // inflated up to the limit (16 MiB before -grpc-max-message)
	}},
)

// instances is a V1 body of one-element rows, size bytes long.
func instances(size int) []byte {
	n := max(1, (size-len(`{"instances":[]}`)+1)/4)
	return []byte(`{"instances":[` + strings.Repeat("[0],", n-1) + `[0]]}`)
}

func emptyInputs(size int) []byte {
	n := max(1, (size-len(`{"inputs":[]}`)+1)/3)
	return []byte(`{"inputs":[` + strings.Repeat("{},", n-1) + `{}]}`)
}

// postConcurrently posts body n times at once, each on its own connection.
func postConcurrently(url string, n int, body []byte) []sent {
	return concurrently(n, func(int) sent {
		c := &http.Client{Timeout: 30 * time.Second}
		defer c.CloseIdleConnections()
		return sent{len(body), statusText(post(c, url, body))}
	})
}

// headersOnly opens 256 connections that each declare a 16 MiB body and
// send none, then waits for the server's answers (at its read timeout).
func headersOnly(t *testing.T, srv *loadtest.Server) []sent {
	host := strings.TrimPrefix(srv.Base, "http://")
	return concurrently(256, func(int) sent { return sent{0, declareOnly(host)} })
}

func declareOnly(host string) string {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v2/models/fraud/infer HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 16777216\r\n\r\n", host)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "no answer: " + err.Error()
	}
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// grpcInfer sends msg (compressed, or not) as a gRPC ModelInfer over h2c and
// returns "grpc N", N the status in the trailers.
func grpcInfer(srv *loadtest.Server, msg []byte, compressed bool) string {
	flag := byte(0)
	if compressed {
		flag = 1
	}
	body := append(binary.BigEndian.AppendUint32([]byte{flag}, uint32(len(msg))), msg...)
	req, _ := http.NewRequest(http.MethodPost, srv.Base+"/inference.GRPCInferenceService/ModelInfer", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	if compressed {
		req.Header.Set("Grpc-Encoding", "gzip")
	}
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "no answer: " + err.Error()
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if s := resp.Trailer.Get("Grpc-Status"); s != "" {
		return "grpc " + s
	}
	if s := resp.Header.Get("Grpc-Status"); s != "" {
		return "grpc " + s
	}
	return strconv.Itoa(resp.StatusCode)
}

// emptyInputsMessage is a ModelInferRequest of 16 MB: 8 million empty inputs.
var emptyInputsMessage = sync.OnceValue(func() []byte {
	msg := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("fraud"))
	for len(msg) < 16_000_000 {
		msg = protowire.AppendBytes(protowire.AppendTag(msg, 5, protowire.BytesType), nil)
	}
	return msg
})

// gzipBomb is a gzip stream of about 1 MB that inflates to 1 GiB of zeros:
// what the deflate format's ratio of about 1000:1 allows.
var gzipBomb = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		zw.Write(zeros)
	}
	zw.Close()
	return b.Bytes()
})

package remote_test

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip/oipjson"
	"github.com/servekit/servekit/serving/remote"
)

// hostile answers every request with a fixed body and headers.
func hostile(body string, hdr ...string) http.Handler {
	b := []byte(body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	})
}

// hostileGRPC answers every call with msg, framed as gRPC by hand from
// bytes marshalled once, so that the server allocates next to nothing
// while the client's cost is measured.
func hostileGRPC(msg proto.Message) http.Handler {
	b, err := proto.Marshal(msg)
	if err != nil {
		panic(err)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b)))
	frame = append(frame, b...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(http.StatusOK)
		w.Write(frame)
		w.Header().Set("Grpc-Status", "0")
	})
}

const binaryClaims = `{"outputs":[{"name":"x","datatype":"BYTES","shape":[10000000],"parameters":{"binary_data_size":4}}]}`

// TestHostileServerBudget: a server the client need not trust cannot make
// it allocate more than serving.DecodeBudget of what it sent: answers of
// empty outputs or elements, lengths and shapes that claim more than the
// bytes hold, bodies over the cap. The measure counts the whole call,
// HTTP client and in-process server included.
func TestHostileServerBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts under -race are skewed; make test runs this without it")
	}
	const size = 256 << 10
	list := func(elem string) string {
		return strings.Repeat(elem+",", size/(len(elem)+1)) + elem
	}
	md := remote.WithMetadata(serving.Metadata{})
	req := &serving.Request{Inputs: everyType(t)[:1]}
	type cs struct {
		name    string
		h       http.Handler
		n       int // bytes the server sends
		grpc    bool
		opts    []remote.Option
		refused serving.Code
	}
	var cases []cs
	for _, c := range []struct {
		name, body string
		hdr        []string
		refused    serving.Code
	}{
		{"empty outputs", `{"outputs":[` + list("{}") + `]}`, nil, serving.Internal},
		{"empty strings", `{"outputs":[{"name":"s","datatype":"BYTES","shape":[` + strconv.Itoa(size/3) + `],"data":[` + list(`""`)[:size/3*3-1] + `]}]}`, nil, serving.OK},
		{"empty params", `{"parameters":{` + list(`"":0`) + `},"outputs":[]}`, nil, serving.Internal},
		{"shape claims", `{"outputs":[{"name":"x","datatype":"FP64","shape":[1000000000],"data":[1]}]}`, nil, serving.Internal},
		{"binary claims", binaryClaims + "\x00\x00\x00\x00", []string{oipjson.HeaderContentLength, strconv.Itoa(len(binaryClaims))}, serving.Internal},
		{"json length lies", `{"outputs":[]}`, []string{oipjson.HeaderContentLength, "1000000"}, serving.Internal},
	} {
		cases = append(cases, cs{name: c.name, h: hostile(c.body, c.hdr...), n: len(c.body), refused: c.refused})
	}
	cases = append(cases,
		cs{name: "length claims", h: hostile("{}", "Content-Length", "1000000000000"), n: 2, refused: serving.ResourceExhausted},
		cs{name: "over the cap", h: hostile(`{"outputs":[]}` + strings.Repeat(" ", 2<<20)), n: 1 << 20,
			opts: []remote.Option{remote.WithMaxResponseBytes(1 << 20)}, refused: serving.ResourceExhausted})
	empties := &pb.ModelInferResponse{}
	for range size / 4 {
		empties.Outputs = append(empties.Outputs, &pb.ModelInferResponse_InferOutputTensor{})
	}
	strs := &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{Name: "s", Datatype: "BYTES", Shape: []int64{size / 2},
		Contents: &pb.InferTensorContents{BytesContents: make([][]byte, size/2)}}}}
	for _, c := range []struct {
		name    string
		msg     *pb.ModelInferResponse
		refused serving.Code
	}{
		{"grpc empty outputs", empties, serving.Internal},
		{"grpc empty strings", strs, serving.OK},
	} {
		cases = append(cases, cs{name: c.name, h: hostileGRPC(c.msg), n: proto.Size(c.msg), grpc: true, refused: c.refused})
	}

	for _, c := range cases {
		srv := serveHandler(t, c.h)
		p := dial(t, target(srv, c.grpc), "m", append(c.opts, md)...)
		p.Predict(context.Background(), req) // warm: connection, pools
		var err error
		used := alloctest.Bytes(3, func() { _, err = p.Predict(context.Background(), req) })
		budget := serving.DecodeBudget(int64(c.n))
		t.Logf("%-20s %8d B -> %9d B (budget %9d) %v", c.name, c.n, used, budget, err)
		if int64(used) > budget {
			t.Errorf("%s: allocated %d bytes for an answer of %d, over the budget of %d", c.name, used, c.n, budget)
		}
		if code := serving.CodeOf(err); code != c.refused {
			t.Errorf("%s: %v, want code %v", c.name, err, c.refused)
		}
	}
}

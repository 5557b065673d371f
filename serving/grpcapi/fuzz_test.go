package grpcapi_test

import (
	"net/http/httptest"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// FuzzDecodeRequest feeds DecodeRequest what proto.Unmarshal makes of
// arbitrary bytes: it must decode into valid tensors within the limit or
// fail with InvalidArgument (Unimplemented only for shared memory inputs),
// never panic, and never allocate more than serving.DecodeBudget of the
// bytes. The seed corpus, typed and raw requests of every datatype, is in
// testdata/fuzz/FuzzDecodeRequest. (FuzzModelInfer fuzzes the handler's own
// decoder, which replaces proto.Unmarshal.)
func FuzzDecodeRequest(f *testing.F) {
	seed, _ := proto.Marshal(grpcapi.EncodeRequest(&serving.Request{Model: "m", Inputs: every(f)}))
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg pb.ModelInferRequest
		if proto.Unmarshal(data, &msg) != nil {
			return
		}
		const limit = 1 << 12
		var req *serving.Request
		var err error
		got := alloctest.Once(func() { req, err = grpcapi.DecodeRequest(&msg, limit) })
		if budget := serving.DecodeBudget(int64(len(data))); !alloctest.Race && int64(got) > budget {
			t.Fatalf("%x: allocated %d bytes, over the budget of %d", data, got, budget)
		}
		if err != nil {
			code := serving.CodeOf(err)
			if code != serving.InvalidArgument && !(code == serving.Unimplemented && sharedMemory(&msg)) {
				t.Fatalf("error with code %v: %v", code, err)
			}
			return
		}
		if len(req.Inputs) != len(msg.Inputs) {
			t.Fatalf("%d inputs decoded from %d", len(req.Inputs), len(msg.Inputs))
		}
		for _, in := range req.Inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
			if in.Len() > limit {
				t.Fatalf("accepted %d elements over the limit", in.Len())
			}
		}
	})
}

// FuzzModelInfer posts arbitrary messages to the handler's ModelInfer over
// gRPC and Connect JSON, through the bounded decoders (wire.go,
// jsoncodec.go): it must never panic or answer Internal, and never allocate
// more than serving.DecodeBudget of the message. Seeds: issue 18's hostile
// requests (hostile_test.go) at 4 KiB.
func FuzzModelInfer(f *testing.F) {
	for _, a := range hostileRequests(4 << 10) {
		if !a.gzip && a.declare == 0 && len(a.msg) < 64<<10 {
			f.Add(a.msg, a.json)
		}
	}
	h := hostileHandler(f)
	f.Fuzz(func(t *testing.T, msg []byte, json bool) {
		a := hostile{msg: msg, json: json}
		w := httptest.NewRecorder()
		r := a.request(a.framed())
		got := alloctest.Once(func() { h.ServeHTTP(w, r) })
		if budget := serving.DecodeBudget(int64(len(msg))); !alloctest.Race && int64(got) > budget {
			t.Fatalf("%q: allocated %d bytes, over the budget of %d", msg, got, budget)
		}
		if s := w.Result().Trailer.Get("Grpc-Status"); s == "13" || w.Code >= 500 {
			t.Fatalf("%q: internal error: %d %s %s", msg, w.Code, s, w.Body)
		}
	})
}

func sharedMemory(msg *pb.ModelInferRequest) bool {
	for _, in := range msg.Inputs {
		if _, ok := in.Parameters["shared_memory_region"]; ok {
			return true
		}
	}
	return false
}

package grpcapi_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// FuzzDecodeRequest feeds the protobuf request path arbitrary bytes: what
// unmarshals as a ModelInferRequest must decode into valid tensors within
// the limit or fail with InvalidArgument (Unimplemented only for shared
// memory inputs), never panic. The seed corpus, typed and raw requests of
// every datatype, is in testdata/fuzz/FuzzDecodeRequest.
func FuzzDecodeRequest(f *testing.F) {
	seed, _ := proto.Marshal(grpcapi.EncodeRequest(&serving.Request{Model: "m", Inputs: every(f)}))
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg pb.ModelInferRequest
		if proto.Unmarshal(data, &msg) != nil {
			return
		}
		const limit = 1 << 12
		req, err := grpcapi.DecodeRequest(&msg, limit)
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

func sharedMemory(msg *pb.ModelInferRequest) bool {
	for _, in := range msg.Inputs {
		if _, ok := in.Parameters["shared_memory_region"]; ok {
			return true
		}
	}
	return false
}

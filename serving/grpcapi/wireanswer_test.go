package grpcapi

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// TestUnmarshalAnswersMatchesProto is TestWireDecoderMatchesProto for the
// messages a client reads: random answers and metadata, and damaged
// copies, decoded by Unmarshal and by proto.Unmarshal, must be accepted
// and refused alike, decode to equal messages, and keep
// serving.DecodeBudget.
func TestUnmarshalAnswersMatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for _, kind := range answerKinds {
		var accepted, refused int
		for range n {
			b, _ := proto.Marshal(kind.random(rng))
			b = append(b, randomUnknown(rng)...)
			for _, m := range [][]byte{b, damage(rng, b), damage(rng, damage(rng, b))} {
				if compareAnswer(t, kind.new, m) {
					accepted++
				} else {
					refused++
				}
			}
		}
		t.Logf("%T: %d accepted, %d refused", kind.new(), accepted, refused)
		if refused == 0 || accepted < n {
			t.Errorf("%T: the corpus does not cover both outcomes", kind.new())
		}
	}
}

// FuzzUnmarshalAnswers is the same comparison on fuzzed bytes, for each
// message a client decodes (kind picks it).
func FuzzUnmarshalAnswers(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for k, kind := range answerKinds {
		for range 5 {
			b, _ := proto.Marshal(kind.random(rng))
			f.Add(uint8(k), b)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, b []byte) {
		compareAnswer(t, answerKinds[int(k)%len(answerKinds)].new, b)
	})
}

var answerKinds = []struct {
	new    func() proto.Message
	random func(*rand.Rand) proto.Message
}{
	{func() proto.Message { return new(pb.ModelInferResponse) }, func(r *rand.Rand) proto.Message { return randomResponse(r) }},
	{func() proto.Message { return new(pb.ModelMetadataResponse) }, func(r *rand.Rand) proto.Message { return randomMetadata(r) }},
	{func() proto.Message { return new(pb.ServerMetadataResponse) }, func(r *rand.Rand) proto.Message {
		return &pb.ServerMetadataResponse{Name: "s", Version: "1", Extensions: []string{"a", "", "é"}[:r.IntN(4)]}
	}},
}

func compareAnswer(t testing.TB, mk func() proto.Message, b []byte) bool {
	t.Helper()
	got, want := mk(), mk()
	var err error
	used := alloctest.Once(func() { err = Unmarshal(b, got, oip.Limits{}) })
	if budget := serving.DecodeBudget(int64(len(b))); !alloctest.Race && int64(used) > budget {
		t.Fatalf("%T %x: allocated %d bytes, over the budget of %d", got, b, used, budget)
	}
	if serving.CodeOf(err) == serving.InvalidArgument { // a limit: proto.Unmarshal has none
		err = Unmarshal(b, got, wideLimits)
	}
	werr := proto.Unmarshal(b, want)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%T %x: decoder error %v, proto.Unmarshal error %v", got, b, err, werr)
	}
	if err != nil {
		return false
	}
	discardUnknown(want.ProtoReflect())
	if !proto.Equal(got, want) {
		t.Fatalf("%x:\n got %v\nwant %v", b, got, want)
	}
	return true
}

// randomResponse is randomRequest's message as an answer: its inputs as
// outputs, its raw inputs as raw outputs.
func randomResponse(r *rand.Rand) *pb.ModelInferResponse {
	req := randomRequest(r)
	m := &pb.ModelInferResponse{ModelName: req.ModelName, ModelVersion: []string{"", "2"}[r.IntN(2)], Id: req.Id,
		Parameters: req.Parameters, RawOutputContents: req.RawInputContents}
	for _, in := range req.Inputs {
		m.Outputs = append(m.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: in.Name, Datatype: in.Datatype,
			Shape: in.Shape, Parameters: in.Parameters, Contents: in.Contents})
	}
	return m
}

func randomMetadata(r *rand.Rand) *pb.ModelMetadataResponse {
	m := &pb.ModelMetadataResponse{Name: "m", Platform: []string{"", "onnxruntime_onnx"}[r.IntN(2)]}
	for range r.IntN(3) {
		m.Versions = append(m.Versions, []string{"1", "", "é"}[r.IntN(3)])
	}
	spec := func() *pb.ModelMetadataResponse_TensorMetadata {
		s := &pb.ModelMetadataResponse_TensorMetadata{Name: "x", Datatype: "FP32"}
		for range r.IntN(4) {
			s.Shape = append(s.Shape, int64(r.IntN(5))-1)
		}
		return s
	}
	for range r.IntN(4) {
		m.Inputs = append(m.Inputs, spec())
	}
	for range r.IntN(4) {
		m.Outputs = append(m.Outputs, spec())
	}
	return m
}

// TestUnmarshalAnswersBudget: the answers a hostile server can send to
// make a client allocate the most per byte (empty outputs, empty BYTES
// elements, empty raw contents, empty tensor metadata, versions and
// extensions, dims), at 512 KiB, keep serving.DecodeBudget; the counts
// over the limits are refused.
func TestUnmarshalAnswersBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts under -race are skewed; make test runs this without it")
	}
	const size = 512 << 10
	repeat := func(field protowire.Number, value []byte) []byte {
		var b []byte
		for len(b) < size {
			b = protowire.AppendTag(b, field, protowire.BytesType)
			b = protowire.AppendBytes(b, value)
		}
		return b
	}
	emptyBytes := repeat(8, nil) // bytes_contents of empty elements
	var output []byte
	output = protowire.AppendTag(output, 2, protowire.BytesType)
	output = protowire.AppendBytes(output, []byte("BYTES"))
	output = protowire.AppendTag(output, 5, protowire.BytesType)
	output = protowire.AppendBytes(output, emptyBytes)
	var dims []byte
	for range serving.MaxRank {
		dims = protowire.AppendVarint(dims, 1)
	}
	var spec []byte
	spec = protowire.AppendTag(spec, 3, protowire.BytesType)
	spec = protowire.AppendBytes(spec, dims)
	for _, c := range []struct {
		name    string
		msg     proto.Message
		b       []byte
		refused bool
	}{
		{"empty outputs", new(pb.ModelInferResponse), repeat(5, nil), true},
		{"1000 empty outputs", new(pb.ModelInferResponse), repeat(5, nil)[:2000], false},
		{"empty raw contents", new(pb.ModelInferResponse), repeat(6, nil), true},
		{"empty BYTES elements", new(pb.ModelInferResponse), func() []byte {
			var b []byte
			b = protowire.AppendTag(b, 5, protowire.BytesType)
			return protowire.AppendBytes(b, output)
		}(), false},
		{"empty versions", new(pb.ModelMetadataResponse), repeat(2, nil), false},
		{"empty inputs", new(pb.ModelMetadataResponse), repeat(4, nil), true},
		{"1000 inputs of 8 dims", new(pb.ModelMetadataResponse), repeat(4, spec)[:1000*(len(spec)+2)], false},
		{"empty extensions", new(pb.ServerMetadataResponse), repeat(3, nil), false},
	} {
		var err error
		used := alloctest.Bytes(2, func() { err = Unmarshal(c.b, c.msg, oip.Limits{}) })
		budget := serving.DecodeBudget(int64(len(c.b)))
		t.Logf("%-22s %7d B -> %8d B (%5.2f x) %v", c.name, len(c.b), used, float64(used)/float64(len(c.b)), err)
		if int64(used) > budget {
			t.Errorf("%s: allocated %d bytes, over the budget of %d", c.name, used, budget)
		}
		if refused := serving.CodeOf(err) == serving.InvalidArgument; refused != c.refused || (err != nil && !refused) {
			t.Errorf("%s: error %v, want refused %v", c.name, err, c.refused)
		}
	}
}

package grpcapi

import (
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// TestWireDecoderMatchesProto decodes random requests, and damaged copies of
// them, with the bounded decoder and with proto.Unmarshal: both must accept
// and refuse the same bytes and, on what they accept, give equal messages
// (unknown fields aside, which the decoder drops). The decoder must keep
// serving.DecodeBudget on each.
func TestWireDecoderMatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 3000
	if testing.Short() {
		n = 300
	}
	var accepted, refused int
	for range n {
		b, _ := proto.Marshal(randomRequest(rng))
		b = append(b, randomUnknown(rng)...)
		for _, m := range [][]byte{b, damage(rng, b), damage(rng, damage(rng, b))} {
			if compareWire(t, m) {
				accepted++
			} else {
				refused++
			}
		}
	}
	t.Logf("%d accepted, %d refused", accepted, refused)
	if refused == 0 || accepted < n {
		t.Error("the corpus does not cover both outcomes")
	}
}

// FuzzWireDecoderMatchesProto is the same comparison on fuzzed bytes.
func FuzzWireDecoderMatchesProto(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		b, _ := proto.Marshal(randomRequest(rng))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { compareWire(t, b) })
}

var wideLimits = oip.Limits{Elements: 1 << 30, Inputs: 1 << 30, Outputs: 1 << 30, Parameters: 1 << 30}

func compareWire(t testing.TB, b []byte) bool {
	t.Helper()
	var got, want pb.ModelInferRequest
	var err error
	used := alloctest.Once(func() { err = decodeInferRequest(b, &got, oip.DefaultLimits) })
	if budget := serving.DecodeBudget(int64(len(b))); !alloctest.Race && int64(used) > budget {
		t.Fatalf("%x: allocated %d bytes, over the budget of %d", b, used, budget)
	}
	if serving.CodeOf(err) == serving.InvalidArgument { // a limit: proto.Unmarshal has none
		err = decodeInferRequest(b, &got, wideLimits)
	}
	werr := proto.Unmarshal(b, &want)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%x: decoder error %v, proto.Unmarshal error %v", b, err, werr)
	}
	if err != nil {
		return false
	}
	discardUnknown(want.ProtoReflect())
	if !proto.Equal(&got, &want) {
		t.Fatalf("%x:\n got %v\nwant %v", b, &got, &want)
	}
	return true
}

func discardUnknown(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				discardUnknown(v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				discardUnknown(mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsMap():
			discardUnknown(v.Message())
		}
		return true
	})
	if m.GetUnknown() != nil {
		m.SetUnknown(nil)
	}
}

func randomRequest(r *rand.Rand) *pb.ModelInferRequest {
	m := &pb.ModelInferRequest{ModelName: "m", Id: []string{"", "1", "é"}[r.IntN(3)], Parameters: randomParams(r)}
	raw := r.IntN(3) == 0
	for i := range r.IntN(4) {
		in := &pb.ModelInferRequest_InferInputTensor{Name: string(rune('a' + i)), Datatype: "FP32", Parameters: randomParams(r)}
		for range r.IntN(4) {
			in.Shape = append(in.Shape, int64(r.IntN(5))-1)
		}
		if raw {
			m.RawInputContents = append(m.RawInputContents, make([]byte, r.IntN(9)))
		} else if r.IntN(4) > 0 {
			in.Contents = randomContents(r)
		}
		m.Inputs = append(m.Inputs, in)
	}
	for range r.IntN(3) {
		m.Outputs = append(m.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: "y", Parameters: randomParams(r)})
	}
	return m
}

func randomContents(r *rand.Rand) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	k := r.IntN(5)
	for range k {
		switch r.IntN(8) {
		case 0:
			c.BoolContents = append(c.BoolContents, r.IntN(2) == 0)
		case 1:
			c.IntContents = append(c.IntContents, int32(r.Int64N(1<<32)-1<<31))
		case 2:
			c.Int64Contents = append(c.Int64Contents, int64(r.Uint64()))
		case 3:
			c.UintContents = append(c.UintContents, r.Uint32())
		case 4:
			c.Uint64Contents = append(c.Uint64Contents, r.Uint64())
		case 5:
			c.Fp32Contents = append(c.Fp32Contents, float32(r.NormFloat64()))
		case 6:
			c.Fp64Contents = append(c.Fp64Contents, []float64{r.NormFloat64(), math.NaN(), math.Inf(-1)}[r.IntN(3)])
		default:
			c.BytesContents = append(c.BytesContents, []byte("xyz")[:r.IntN(4)])
		}
	}
	return c
}

func randomParams(r *rand.Rand) map[string]*pb.InferParameter {
	if r.IntN(2) == 0 {
		return nil
	}
	m := map[string]*pb.InferParameter{}
	for i := range r.IntN(3) {
		p := &pb.InferParameter{}
		switch r.IntN(6) {
		case 0:
			p.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: true}
		case 1:
			p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: -5}
		case 2:
			p.ParameterChoice = &pb.InferParameter_StringParam{StringParam: "s"}
		case 3:
			p.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: 1.5}
		case 4:
			p.ParameterChoice = &pb.InferParameter_Uint64Param{Uint64Param: 1 << 63}
		}
		m[string(rune('p'+i))] = p
	}
	return m
}

// randomUnknown is a field the schema lacks, or a known one of the wrong
// wire type, or a known repeated field unpacked: what proto.Unmarshal keeps
// as unknown or accepts in either form.
func randomUnknown(r *rand.Rand) []byte {
	var b []byte
	switch r.IntN(5) {
	case 0:
		b = protowire.AppendTag(b, 99, protowire.VarintType)
		b = protowire.AppendVarint(b, 7)
	case 1:
		b = protowire.AppendTag(b, 1, protowire.VarintType) // model_name as a varint
		b = protowire.AppendVarint(b, 1)
	case 2:
		b = protowire.AppendTag(b, 98, protowire.StartGroupType)
		b = protowire.AppendTag(b, 1, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 1)
		b = protowire.AppendTag(b, 98, protowire.EndGroupType)
	case 3: // an input with an unpacked shape and contents given twice
		var in []byte
		in = protowire.AppendTag(in, 3, protowire.VarintType)
		in = protowire.AppendVarint(in, 2)
		in = protowire.AppendTag(in, 3, protowire.VarintType)
		in = protowire.AppendVarint(in, 3)
		for range 2 {
			var c []byte
			c = protowire.AppendTag(c, 6, protowire.Fixed32Type)
			c = protowire.AppendFixed32(c, math.Float32bits(1.5))
			c = protowire.AppendTag(c, 2, protowire.BytesType)
			c = protowire.AppendBytes(c, protowire.AppendVarint(protowire.AppendVarint(nil, 1), 1<<40))
			in = protowire.AppendTag(in, 5, protowire.BytesType)
			in = protowire.AppendBytes(in, c)
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, in)
	}
	return b
}

// damage changes, drops, inserts a byte or cuts the end.
func damage(r *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	c := append([]byte(nil), b...)
	i := r.IntN(len(c))
	switch r.IntN(4) {
	case 0:
		c[i] = byte(r.IntN(256))
	case 1:
		c = append(c[:i], c[i+1:]...)
	case 2:
		c = append(c[:i], append([]byte{byte(r.IntN(256))}, c[i:]...)...)
	default:
		c = c[:i]
	}
	return c
}

// TestCountRepeatedCaps holds countRepeated, the first pass of every hand
// decoder, to its caps: a field may hold exactly its max (messages,
// unpacked and packed scalars alike), one more is InvalidArgument naming
// the field, fields it does not describe or of the wrong wire type count
// nothing, and counting allocates nothing.
func TestCountRepeatedCaps(t *testing.T) {
	msg := func(inputs, dims int) []byte {
		var b []byte
		for range inputs {
			b = protowire.AppendTag(b, 5, protowire.BytesType)
			b = protowire.AppendBytes(b, []byte("in"))
		}
		packed := []byte{}
		for range dims {
			packed = protowire.AppendVarint(packed, 300) // two bytes each
		}
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
		b = protowire.AppendTag(b, 7, protowire.VarintType) // one more, unpacked
		b = protowire.AppendVarint(b, 1)
		b = protowire.AppendTag(b, 5, protowire.VarintType) // wrong type: unknown
		b = protowire.AppendVarint(b, 1)
		b = protowire.AppendTag(b, 4, protowire.BytesType) // not counted
		b = protowire.AppendBytes(b, []byte("x"))
		b = protowire.AppendTag(b, 9, protowire.BytesType) // outside the table
		return protowire.AppendBytes(b, []byte("y"))
	}
	table := func() []repeated {
		return []repeated{ // fields 4 to 7
			{},
			{typ: protowire.BytesType, max: 3, name: "inputs"},
			{}, // 6: not counted
			{typ: protowire.VarintType, max: 5, name: "dims"},
		}
	}
	for _, tc := range []struct {
		inputs, dims int
		want         string // "" for no error
	}{
		{0, 0, ""},
		{3, 4, ""}, // each at its max: 3 inputs, 4 packed + 1 unpacked dims
		{4, 4, "grpcapi: more than 3 inputs"},
		{3, 5, "grpcapi: more than 5 dims"},
		{1000, 0, "grpcapi: more than 3 inputs"},
	} {
		c := table()
		err := countRepeated(msg(tc.inputs, tc.dims), 4, c)
		if tc.want != "" {
			if err == nil || err.Error() != tc.want || serving.CodeOf(err) != serving.InvalidArgument {
				t.Errorf("%d inputs, %d dims: error %v, want InvalidArgument %q", tc.inputs, tc.dims, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d inputs, %d dims: %v", tc.inputs, tc.dims, err)
		}
		if c[1].n != tc.inputs || c[1].bytes != 2*tc.inputs || c[3].n != tc.dims+1 || c[0].n != 0 || c[2].n != 0 {
			t.Errorf("%d inputs, %d dims: counted %+v", tc.inputs, tc.dims, c)
		}
	}
	b := msg(3, 4)
	c := table()
	if a := testing.AllocsPerRun(100, func() {
		for i := range c {
			c[i].n, c[i].bytes = 0, 0
		}
		_ = countRepeated(b, 4, c)
	}); a != 0 {
		t.Errorf("countRepeated allocates %v times a pass, want 0", a)
	}
}

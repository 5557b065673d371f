package grpcapi

import (
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// TestJSONDecoderMatchesProtojson decodes hand-written edge cases, random
// requests as protojson writes them (both field spellings) and damaged
// copies with the bounded decoder and with protojson (DiscardUnknown, as
// Connect's codec): both must accept and refuse the same bodies and make
// equal messages, and the decoder must keep serving.DecodeBudget on each.
func TestJSONDecoderMatchesProtojson(t *testing.T) {
	bodies := jsonSeeds()
	rng := rand.New(rand.NewPCG(7, 8))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for range n {
		b := randomJSON(rng)
		bodies = append(bodies, b, mutateJSON(rng, b), mutateJSON(rng, mutateJSON(rng, b)))
	}
	var accepted, refused int
	for _, b := range bodies {
		if compareJSON(t, []byte(b)) {
			accepted++
		} else {
			refused++
		}
	}
	t.Logf("%d accepted, %d refused", accepted, refused)
	if refused == 0 || accepted < n {
		t.Error("the corpus does not cover both outcomes")
	}
}

// FuzzJSONDecoderMatchesProtojson is the same comparison on fuzzed bodies.
func FuzzJSONDecoderMatchesProtojson(f *testing.F) {
	for _, b := range jsonSeeds() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { compareJSON(t, b) })
}

func compareJSON(t testing.TB, b []byte) bool {
	t.Helper()
	var got, want pb.ModelInferRequest
	var err error
	used := alloctest.Once(func() { err = decodeInferJSON(b, &got, oip.DefaultLimits) })
	if budget := serving.DecodeBudget(int64(len(b))); !alloctest.Race && int64(used) > budget {
		t.Fatalf("%q: allocated %d bytes, over the budget of %d", b, used, budget)
	}
	if serving.CodeOf(err) == serving.InvalidArgument { // a limit: protojson has none
		err = decodeInferJSON(b, &got, wideLimits)
	}
	werr := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, &want)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: decoder error %v, protojson error %v", b, err, werr)
	}
	if err != nil {
		return false
	}
	if !proto.Equal(&got, &want) {
		t.Fatalf("%q:\n got %v\nwant %v", b, &got, &want)
	}
	return true
}

func jsonSeeds() []string {
	in := func(s string) string { return `{"inputs":[{` + s + `}]}` }
	c := func(s string) string { return in(`"contents":{` + s + `}`) }
	return []string{
		`{}`, ` {} `, `null`, `[]`, `{"modelName":"m","model_version":"1","id":"é\u00e9"}`,
		`{"modelName":"m","model_name":"n"}`, `{"modelName":null,"modelName":"x"}`, `{"modelName":1}`,
		`{"unknown":[1,{"a":null}],"x":{}}`, `{"inputs":null}`, `{"inputs":[null]}`, `{"inputs":{}}`,
		in(`"name":"x","datatype":"FP32","shape":[1,"2",3e0,4.0,-0,"-0"]`),
		in(`"shape":[1.5]`), in(`"shape":["1 "]`), in(`"shape":[" 1"]`), in(`"shape":[""]`), in(`"shape":["0x1"]`),
		in(`"shape":[1e19]`), in(`"shape":[9223372036854775807,-9223372036854775808]`), in(`"shape":[9223372036854775808]`),
		in(`"shape":[100e-2,1000e-3,10e-2,0.5e1,0.05e2,0e99999999999,1E+2]`),
		c(`"boolContents":[true,false],"intContents":[-2147483648,2147483647],"uintContents":[4294967295]`),
		c(`"intContents":[2147483648]`), c(`"uintContents":[-1]`), c(`"uintContents":["-0"]`), c(`"uint64Contents":["18446744073709551615",-0.0]`),
		c(`"boolContents":["true"]`), c(`"boolContents":[null]`), c(`"boolContents":null`),
		c(`"fp32Contents":[1.5,"NaN","Infinity","-Infinity","1e3",3.4e39]`), c(`"fp32Contents":[1.5,"NaN","Infinity","-Infinity","1e3"]`),
		c(`"fp64Contents":[1e308,"1e-400",-0]`), c(`"fp64Contents":["nan"]`),
		c(`"bytesContents":["","AA==","AA","_-8=","+/8=","A","AAA=","QUJD\nRA=="]`), c(`"bytesContents":["\u0041\u0041=="]`),
		c(`"bytes_contents":["a"],"bytesContents":["a"]`),
		in(`"parameters":{"a":{"boolParam":true},"b":{"int64_param":"-5"},"c":{"stringParam":"s"},"d":{"doubleParam":"NaN"},"e":{"uint64Param":"18446744073709551615"},"f":{}}`),
		in(`"parameters":{"a":{"boolParam":true,"int64Param":1}}`), in(`"parameters":{"a":{"boolParam":null,"int64Param":1}}`),
		in(`"parameters":{"a":{"boolParam":true},"a":{"boolParam":false}}`), in(`"parameters":{"a":null}`),
		`{"outputs":[{"name":"y","parameters":{"binary_data":{"boolParam":true}}}],"rawInputContents":["AAAA","",null]}`,
		`{"rawInputContents":["AAAA",""]}`,
		`{"id":"\ud83d\ude00"}`, `{"id":"\ud83d"}`, `{"id":"\udc00\ud83d"}`, `{"id":"\u00"}`, "{\"id\":\"\xff\"}",
		`{"id":"a"} x`, `{"id":"a"}}`, `{"id":"a",}`, `{"id" "a"}`, `{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":tru}`, `{"x":truex}`,
		`{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}`,
		`{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		in(`"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998)),
	}
}

func randomJSON(r *rand.Rand) string {
	o := protojson.MarshalOptions{UseProtoNames: r.IntN(2) == 0, EmitUnpopulated: r.IntN(4) == 0}
	if r.IntN(3) == 0 {
		o.Multiline, o.Indent = true, " "
	}
	b, err := o.Marshal(randomRequest(r))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// mutateJSON damages a body: a byte changed, dropped or inserted, or the
// end cut.
func mutateJSON(r *rand.Rand, s string) string {
	if s == "" {
		return s
	}
	const alphabet = `{}[]":,. -+eE0123456789tfnulrsaAN=_\` + "\x00\xff"
	i := r.IntN(len(s))
	switch r.IntN(4) {
	case 0:
		return s[:i] + string(alphabet[r.IntN(len(alphabet))]) + s[i+1:]
	case 1:
		return s[:i] + s[i+1:]
	case 2:
		return s[:i] + string(alphabet[r.IntN(len(alphabet))]) + s[i:]
	}
	return s[:i]
}

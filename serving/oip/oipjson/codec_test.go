package oipjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

func tensors(t *testing.T) []serving.Tensor {
	t.Helper()
	mk := func(name string, dt serving.DataType, shape []int64, data any) serving.Tensor {
		x, err := serving.FromSlice(name, dt, shape, data)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	half := []uint16{serving.Float32ToFP16(1.5), serving.Float32ToFP16(float32(math.Inf(-1)))}
	fp16, err := serving.FromSlice("h", serving.FP16, []int64{2}, half)
	if err != nil {
		t.Fatal(err)
	}
	return []serving.Tensor{
		mk("f", serving.FP32, []int64{2, 2}, []float32{1.25, float32(math.NaN()), float32(math.Inf(1)), -0.5}),
		mk("i", serving.Int64, []int64{3}, []int64{math.MinInt64, 0, math.MaxInt64}),
		mk("u", serving.Uint64, []int64{1}, []uint64{math.MaxUint64}),
		mk("s", serving.Bytes, []int64{2}, [][]byte{[]byte("é"), []byte("a\"b")}),
		mk("b", serving.Bool, []int64{}, []bool{true}),
		fp16,
	}
}

// same compares tensors bit for bit (NaN equals NaN).
func same(t *testing.T, what string, got, want []serving.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.DataType != w.DataType || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || !bytes.Equal(g.AppendRaw(nil), w.AppendRaw(nil)) {
			t.Errorf("%s: tensor %d is %s %v %v %v, want %s %v %v %v", what, i, g.Name, g.DataType, g.Shape, g.Data(), w.Name, w.DataType, w.Shape, w.Data())
		}
	}
}

// What a client encodes, a server decodes, and the other way: every
// datatype, NaN and infinities (as the codec's strings), in JSON and as
// binary data.
func TestRoundTrips(t *testing.T) {
	ts := tensors(t)
	for _, binary := range []bool{false, true} {
		req := &serving.Request{ID: "r1", Inputs: ts, Outputs: []string{"f", "s"}, Params: serving.Params{"priority": int64(2)}}
		body, jsonLen := oipjson.AppendRequest(nil, req, binary, oipjson.NonFiniteString)
		js := body
		if jsonLen >= 0 {
			js = body[:jsonLen]
		}
		if (jsonLen >= 0) != binary || !json.Valid(js) {
			t.Fatalf("binary %v: JSON length %d of %d bytes", binary, jsonLen, len(body))
		}
		var d oipjson.InferRequest
		if err := oipjson.DecodeInferRequest(&d, body, jsonLen, oip.Limits{}); err != nil {
			t.Fatalf("binary %v: %v\n%s", binary, err, body)
		}
		same(t, fmt.Sprintf("request, binary %v", binary), d.Request.Inputs, ts)
		if prio, _ := d.Request.Params.Int("priority"); d.Request.ID != "r1" || fmt.Sprint(d.Request.Outputs) != "[f s]" || prio != 2 ||
			d.BinaryOutput(0) != binary || d.BinaryOutput(1) != binary {
			t.Errorf("binary %v: request %+v", binary, d.Request)
		}

		resp := &serving.Response{ID: "r1", Model: "m", Version: "3", Outputs: ts, Params: serving.Params{"k": "v"}}
		out, n := oipjson.AppendResponse(nil, resp, &d, oipjson.NonFiniteString)
		got, err := oipjson.DecodeResponse(out, n, oip.Limits{})
		if err != nil {
			t.Fatalf("binary %v: %v\n%s", binary, err, out)
		}
		// Only the outputs the request asked for binary travel raw: here f
		// and s, by position, when binary.
		same(t, fmt.Sprintf("answer, binary %v", binary), got.Outputs, ts)
		if got.ID != "r1" || got.Model != "m" || got.Version != "3" || got.Params["k"] != "v" {
			t.Errorf("binary %v: answer %+v", binary, got)
		}
	}
}

// One NaN policy, the caller's: strings by default, Triton's bare tokens,
// or null.
func TestNonFinite(t *testing.T) {
	x, _ := serving.NewTensor("x", []int64{3}, []float64{math.NaN(), math.Inf(1), math.Inf(-1)})
	for nf, want := range map[oipjson.NonFinite]string{
		oipjson.NonFiniteString: `["NaN","Infinity","-Infinity"]`,
		oipjson.NonFiniteBare:   `[NaN,Infinity,-Infinity]`,
		oipjson.NonFiniteNull:   `[null,null,null]`,
	} {
		b, _ := oipjson.AppendResponse(nil, &serving.Response{Model: "m", Outputs: []serving.Tensor{x}}, nil, nf)
		if !strings.Contains(string(b), `"data":`+want) {
			t.Errorf("policy %d: %s, want data %s", nf, b, want)
		}
	}
}

// A configuration is written as Triton writes it: what protobuf's printer
// writes with every primitive field (protojson's EmitUnpopulated, with
// proto names), except that 64-bit integers are numbers and an unset
// message is left out rather than null. Checked on a configuration with
// most of Triton's fields set.
func TestConfigIsTritonsJSON(t *testing.T) {
	var c mc.ModelConfig
	err := prototext.Unmarshal([]byte(`
name: "densenet" platform: "onnxruntime_onnx" max_batch_size: 8
version_policy: { specific: { versions: [ 1, 3 ] } }
input [ { name: "data_0" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 3, 224, 224 ] reshape: { shape: [ 1, 3, 224, 224 ] } } ]
output [ { name: "prob" data_type: TYPE_FP32 dims: [ 1000 ] label_filename: "labels.txt" } ]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 18446744073709551615
  default_queue_policy: { timeout_action: DELAY default_timeout_microseconds: 100 }
  priority_queue_policy: { key: 2 value: { max_queue_size: 5 } } priority_queue_policy: { key: 1 value: { max_queue_size: 4 } } }
instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0, 1 ] } ]
parameters { key: "b" value: { string_value: "2" } } parameters { key: "a" value: { string_value: "1" } }
model_warmup [ { name: "w" batch_size: 1 inputs { key: "data_0" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } } ]
response_cache { enable: true }
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	got := oipjson.AppendConfig(nil, &c)
	ref, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	_ = json.Unmarshal(ref, &w)
	if want := tritonForm(w); !reflect.DeepEqual(normalize(g), want) {
		t.Errorf("config\n got %s\nwant %v", got, want)
	}
	for _, s := range []string{`"max_batch_size":8`, `"max_queue_delay_microseconds":18446744073709551615`, `"dims":[3,224,224]`,
		`"versions":[1,3]`, `"decoupled"`, `"model_warmup":[{`} {
		if s == `"decoupled"` {
			continue // model_transaction_policy is unset here: left out, not null
		}
		if !strings.Contains(string(got), s) {
			t.Errorf("config lacks %s:\n%s", s, got)
		}
	}
	if strings.Contains(string(got), "null") || strings.Contains(string(got), "sequence_batching") {
		t.Errorf("an unset message written:\n%s", got)
	}
}

// tritonForm turns protojson's output into what Triton writes: nulls
// (unset messages) dropped, and every value normalized.
func tritonForm(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e != nil {
				out[k] = tritonForm(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = tritonForm(x[i])
		}
		return out
	}
	return normalize(v)
}

// normalize compares numbers by value whether written as numbers or, by
// protojson for 64-bit integers, as strings.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case json.Number:
		return "n:" + x.String()
	case float64:
		return "n:" + fmt.Sprint(x)
	case string:
		if _, err := fmt.Sscanf(x, "%d", new(uint64)); err == nil && fmt.Sprint(mustUint(x)) == x {
			return "n:" + x
		}
	}
	return v
}

func mustUint(s string) uint64 {
	var u uint64
	fmt.Sscanf(s, "%d", &u)
	return u
}

// The statistics answer has every member Triton's clients index, counts
// as numbers.
func TestStatisticsShape(t *testing.T) {
	st := []oip.ModelStats{{Name: "m", Version: "1", LastInference: time.UnixMilli(1700000000123), InferenceCount: 7, ExecutionCount: 3,
		Inference: oip.InferStats{Success: oip.Stat{Count: 7, NS: 1 << 40}},
		Batches:   []oip.BatchStats{{Size: 2, ComputeInfer: oip.Stat{Count: 3, NS: 9}}}}}
	b := oipjson.AppendStatistics(nil, st)
	want := `{"model_stats":[{"name":"m","version":"1","last_inference":1700000000123,"inference_count":7,"execution_count":3,` +
		`"inference_stats":{"success":{"count":7,"ns":1099511627776},"fail":{"count":0,"ns":0},"queue":{"count":0,"ns":0},` +
		`"compute_input":{"count":0,"ns":0},"compute_infer":{"count":0,"ns":0},"compute_output":{"count":0,"ns":0},` +
		`"cache_hit":{"count":0,"ns":0},"cache_miss":{"count":0,"ns":0}},"response_stats":{},` +
		`"batch_stats":[{"batch_size":2,"compute_input":{"count":0,"ns":0},"compute_infer":{"count":3,"ns":9},"compute_output":{"count":0,"ns":0}}],` +
		`"memory_usage":[]}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if b := oipjson.AppendIndex(nil, []oip.IndexEntry{{Name: "a", Version: "1", State: "READY"}, {Name: "b", State: "UNAVAILABLE", Reason: "unloaded"}}); string(b) !=
		`[{"name":"a","version":"1","state":"READY"},{"name":"b","state":"UNAVAILABLE","reason":"unloaded"}]` {
		t.Errorf("index %s", b)
	}
}

// Repository request bodies as Triton's clients send them: empty for the
// index and the C++ client's unload, {} or parameters for load and unload.
func TestRepositoryRequest(t *testing.T) {
	for body, want := range map[string]string{
		"":               "{false map[]}",
		"{}":             "{false map[]}",
		`{"ready":true}`: "{true map[]}",
		`{"parameters": {"unload_dependents": false}}`: "{false map[unload_dependents:false]}",
	} {
		r, err := oipjson.DecodeRepositoryRequest([]byte(body))
		if err != nil || fmt.Sprint(r) != want {
			t.Errorf("%q: %v %v, want %s", body, r, err, want)
		}
	}
	if _, err := oipjson.DecodeRepositoryRequest([]byte(`{"ready":`)); serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("malformed: %v", err)
	}
}

// FuzzDecodeResponse: a Go client reading an untrusted server's answer
// pays what its bytes are worth, never panics, and gets valid tensors.
func FuzzDecodeResponse(f *testing.F) {
	x, _ := serving.NewTensor("y", []int64{2}, []float32{1, 2})
	for _, bin := range []oipjson.Binary{nil, allBinary{}} {
		b, n := oipjson.AppendResponse(nil, &serving.Response{Model: "m", Outputs: []serving.Tensor{x}}, bin, oipjson.NonFiniteString)
		f.Add(b, n)
	}
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"y","datatype":"BYTES","shape":[1000000000],"data":[]}]}`), -1)
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[1073741824],"parameters":{"binary_data_size":4}}]}abcd`), 100)
	f.Fuzz(func(t *testing.T, body []byte, jsonLen int) {
		jsonLen = min(jsonLen, len(body))
		var resp *serving.Response
		var err error
		used := alloctest.Once(func() { resp, err = oipjson.DecodeResponse(body, jsonLen, oip.Limits{Elements: 1 << 12}) })
		if budget := serving.DecodeBudget(int64(len(body))); !alloctest.Race && int64(used) > budget {
			t.Fatalf("%q: allocated %d bytes, over the budget of %d", body, used, budget)
		}
		if err != nil {
			return
		}
		for _, o := range resp.Outputs {
			if err := o.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
		}
	})
}

type allBinary struct{}

func (allBinary) BinaryOutput(int) bool { return true }

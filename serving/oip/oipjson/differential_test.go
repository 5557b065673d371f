package oipjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
)

// The V2 decoder used to be encoding/json into these structs, with the data
// arrays scanned afterwards. legacyDecode keeps that path as the oracle of
// TestDecoderMatchesEncodingJSON.

type legacyRequest struct {
	ID         string          `json:"id"`
	Parameters json.RawMessage `json:"parameters"`
	Inputs     []legacyInput   `json:"inputs"`
	Outputs    []legacyOutput  `json:"outputs"`
}

type legacyInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters *legacyParams   `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

type legacyOutput struct {
	Name       string              `json:"name"`
	Parameters *legacyOutputParams `json:"parameters"`
}

type legacyOutputParams struct {
	legacyParams
	Classification *int64 `json:"classification"`
}

type legacyParams struct {
	BinaryDataSize *int64 `json:"binary_data_size"`
	BinaryData     *bool  `json:"binary_data"`
}

func legacyDecode(body []byte, jsonLen int, maxElements int64) (*InferRequest, error) {
	js, bin := body, []byte(nil)
	if jsonLen >= 0 {
		if jsonLen > len(body) {
			return nil, badRequest("JSON header too long")
		}
		js, bin = body[:jsonLen], body[jsonLen:]
	}
	if !utf8.Valid(js) {
		return nil, badRequest("request JSON is not valid UTF-8")
	}
	var ir legacyRequest
	if err := json.Unmarshal(js, &ir); err != nil {
		return nil, badRequest("malformed request JSON: %v", err)
	}
	d := &InferRequest{Request: serving.Request{ID: ir.ID}}
	if len(ir.Parameters) > 0 && string(ir.Parameters) != "null" {
		if err := json.Unmarshal(ir.Parameters, &d.Request.Params); err != nil {
			return nil, badRequest("parameters: %v", err)
		}
		d.binaryAll, _ = d.Request.Params.Bool("binary_data_output")
	}
	if len(ir.Inputs) == 0 {
		return nil, badRequest("no inputs")
	}
	for i, in := range ir.Inputs {
		for _, prev := range ir.Inputs[:i] {
			if prev.Name == in.Name {
				return nil, badRequest("input %q given twice", in.Name)
			}
		}
		if in.Name == "" {
			return nil, badRequest("an input has no name")
		}
		dt, err := serving.ParseDataType(in.Datatype)
		if err != nil || in.Shape == nil {
			return nil, badRequest("input %q: datatype or shape", in.Name)
		}
		n, err := serving.NumElements(in.Shape)
		if err != nil || n > maxElements {
			return nil, badRequest("input %q: elements", in.Name)
		}
		var t serving.Tensor
		if in.Parameters != nil && in.Parameters.BinaryDataSize != nil {
			size := *in.Parameters.BinaryDataSize
			if size < 0 || size > int64(len(bin)) || len(in.Data) > 0 && string(in.Data) != "null" {
				return nil, badRequest("input %q: binary", in.Name)
			}
			if t, err = serving.FromRaw(in.Name, dt, in.Shape, bin[:size]); err != nil {
				return nil, err
			}
			bin = bin[size:]
		} else {
			if len(in.Data) == 0 {
				return nil, badRequest("input %q: no data", in.Name)
			}
			if t, err = parseTensor(in.Data, in.Name, dt, in.Shape, n); err != nil {
				return nil, err
			}
		}
		d.Request.Inputs = append(d.Request.Inputs, t)
	}
	if len(bin) != 0 {
		return nil, badRequest("binary data left")
	}
	for i, o := range ir.Outputs {
		if o.Name == "" {
			return nil, badRequest("output %d has no name", i)
		}
		if slices.Contains(d.Request.Outputs, o.Name) {
			return nil, badRequest("output %q asked for twice", o.Name)
		}
		d.Request.Outputs = append(d.Request.Outputs, o.Name)
		var a outputAsk
		if o.Parameters != nil && o.Parameters.BinaryData != nil {
			a.set, a.binary = true, *o.Parameters.BinaryData
		}
		if o.Parameters != nil && o.Parameters.Classification != nil {
			k := *o.Parameters.Classification
			if k < 1 || k > serving.MaxClassification {
				return nil, badRequest("output %q: classification", o.Name)
			}
			a.class = k
		}
		d.asks = append(d.asks, a)
	}
	return d, nil
}

// TestDecoderMatchesEncodingJSON runs the decoder and the encoding/json
// oracle over the fuzz seeds, hand-written edge cases and random valid and
// mutated bodies: the decoder must accept only what json.Valid accepts, and
// on valid JSON accept and reject the same bodies with the same values.
func TestDecoderMatchesEncodingJSON(t *testing.T) {
	bodies := seedBodies(t)
	rng := rand.New(rand.NewPCG(1, 2))
	n := 4000
	if testing.Short() {
		n = 500
	}
	for range n {
		b := randomBody(rng)
		bodies = append(bodies, b, mutate(rng, b), mutate(rng, mutate(rng, b)))
	}
	var counts [3]int // invalid JSON, valid but refused, accepted
	for _, b := range bodies {
		counts[compareDecoders(t, []byte(b))]++
	}
	t.Logf("%d bodies: %d invalid JSON, %d valid but refused, %d accepted", len(bodies), counts[0], counts[1], counts[2])
	if counts[0] == 0 || counts[1] == 0 || counts[2] < len(bodies)/10 {
		t.Error("the corpus does not cover all three outcomes")
	}
}

// FuzzDecoderMatchesEncodingJSON is the same comparison on fuzzed bodies.
func FuzzDecoderMatchesEncodingJSON(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { compareDecoders(t, body) })
}

func compareDecoders(t testing.TB, body []byte) int {
	t.Helper()
	var got *InferRequest
	var err error
	used := alloctest.Once(func() {
		got = new(InferRequest)
		err = decodeV2(got, body, -1, limits{elements: 1 << 12, inputs: 1024, outputs: 1024, parameters: 256})
	})
	if budget := serving.DecodeBudget(int64(len(body))); !alloctest.Race && int64(used) > budget {
		t.Fatalf("%q: allocated %d bytes, over the budget of %d", body, used, budget)
	}
	valid := json.Valid(body) && utf8.Valid(body)
	if !valid {
		if err == nil {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if msg := err.Error(); !strings.Contains(msg, "malformed") && !strings.Contains(msg, "UTF-8") {
			t.Fatalf("invalid JSON %q: error %q names neither malformed JSON nor UTF-8", body, msg)
		}
		return 0
	}
	want, werr := legacyDecode(body, -1, 1<<12)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: decoder error %v, encoding/json path error %v", body, err, werr)
	}
	if err != nil {
		return 1
	}
	if g, w := describe(got), describe(want); g != w {
		t.Fatalf("%q:\n got %s\nwant %s", body, g, w)
	}
	checkFloats(t, body, got)
	return 2
}

// describe renders what a decode produced, for comparison.
func describe(d *InferRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id=%q params=%#v all=%v outputs=%q classes=%v", d.Request.ID, d.Request.Params, d.binaryAll, d.Request.Outputs, d.Classifications())
	for i, o := range d.Request.Outputs {
		fmt.Fprintf(&b, " %s:%v", o, d.BinaryOutput(i))
	}
	for _, in := range d.Request.Inputs {
		fmt.Fprintf(&b, " [%q %v %v %#v]", in.Name, in.DataType, in.Shape, in.Data())
	}
	return b.String()
}

// checkFloats compares FP32/FP64 values with strconv on encoding/json's
// numbers, to check the decoder's own float parsing.
func checkFloats(t testing.TB, body []byte, d *InferRequest) {
	var r struct {
		Inputs []struct {
			Datatype string
			Data     json.RawMessage
		}
	}
	if json.Unmarshal(body, &r) != nil || len(r.Inputs) != len(d.Request.Inputs) {
		return
	}
	for i, in := range d.Request.Inputs {
		bits := map[serving.DataType]int{serving.FP32: 32, serving.FP64: 64}[in.DataType]
		if bits == 0 || len(r.Inputs[i].Data) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(r.Inputs[i].Data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			continue
		}
		var nums []json.Number
		var flatten func(any)
		flatten = func(v any) {
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					flatten(e)
				}
			case json.Number:
				nums = append(nums, x)
			}
		}
		flatten(v)
		if len(nums) != in.Len() {
			continue // strings such as "NaN" among them
		}
		for j, num := range nums {
			f, _ := strconv.ParseFloat(string(num), bits)
			g, _ := in.Float64At(j)
			if math.Float64bits(f) != math.Float64bits(g) {
				t.Fatalf("%q: element %d is %v, strconv gives %v", body, j, g, f)
			}
		}
	}
}

func seedBodies(t testing.TB) []string {
	files, _ := filepath.Glob("testdata/fuzz/FuzzDecodeRequest/*")
	var out []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, s)
	}
	in := func(fields string) string { return `{"inputs":[{` + fields + `}]}` }
	return append(out,
		`{"id":"1","inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[0.12,-1.5,3.25,0.5,12.75,-0.001,7,0.333]}]}`,
		in(`"data":[1,2],"name":"x","datatype":"INT32","shape":[2]`), // data first
		in(`"NAME":"x","Shape":[2],"DataType":"fp64","DATA":[1e-7,123456789012345678901234567890]`),
		in(`"name":"x","shape":[2],"datatype":"FP32","data":[1,2],"shape":[1,2]`),
		in(`"name":"x","\u0073hape":[2],"datatype":"FP32","data":[1,2]`),
		in(`"name":"x","ſhape":[2],"datatype":"FP32","data":[1,2]`),
		in(`"name":"x","shape":[1,null],"datatype":"FP32","data":[]`),
		in(`"name":"x","shape":[2],"datatype":"FP32","data":[1,2],"parameters":null,"x":{"a":[1,{"b":null}]}`),
		in(`"name":"x","shape":[1],"datatype":"INT8","data":[-0]`),
		in(`"name":"x","shape":[1],"datatype":"INT64","data":[-9223372036854775808]`),
		in(`"name":"x","shape":[1],"datatype":"UINT64","data":[1e19]`),
		in(`"name":"x","shape":[-0],"datatype":"FP32","data":[]`),
		in(`"name":"x","shape":[1.0],"datatype":"FP32","data":[1]`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":null}`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data":1}`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":[]`),
		in(`"name":"x","shape":[1],"datatype":"BYTES","data":["\ud800","\udc00\ud800x","\ud83d\ude00"]`),
		in(`"name":"x","shape":[1],"datatype":"BYTES","data":"a"`),
		in(`"name":"\u00e9","shape":[],"datatype":"BOOL","data":true`),
		`{"id":null,"parameters":{"timeout":1e3,"a":[1,"x",{"b":false}],"a":2,"binary_data_output":true},`+
			`"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"binary_data":false}},{"name":"z"},null]}`,
		`{"parameters":{"x":1e400},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"parameters":"x","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
		// Repeated keys: the last wins, and objects merge as encoding/json's do.
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"b"}],"inputs":[{"shape":[1]}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"inputs":[{"name":"b"},{"name":"c"}]}`,
		`{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"inputs":null}`,
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4},"parameters":{"y":1}`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4},"parameters":null`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[1],"data":null`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":["a"],"data":[2]`),
		in(`"name":"x","shape":[1],"datatype":"FP32","data":[2],"name":"y","datatype":"INT8"`),
		`{"outputs":[{"name":"a","parameters":{"binary_data":true}}],"outputs":[{"parameters":{"y":1}}],"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
		// Triton's classification extension: an output's top k.
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":3,"binary_data":true}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"Classification":2}},{"name":"z","parameters":{"classification":null}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":2}},{"name":"y","parameters":{"classification":1}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":2},"parameters":{"classification":5}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":0}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":-1}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":2.5}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":"2"}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":1e3}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"y","parameters":{"classification":99999999999999999999}}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"classification":"ignored on an input"}}]}`,
		`{"id":"a","id":"b","ID":"c","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"parameters":{"a":1},"parameters":{"b":2},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[null]}`, `null`, `{}`, `[]`, `"x"`, `{"inputs":{}}`, `{"id":1}`, `{"inputs":[1]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} `,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}x`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[NaN]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[01]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[.5]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[+1]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["\x"]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"y":[`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"y":`+strings.Repeat("[", 9999)+strings.Repeat("]", 9999)+`}`,
	)
}

var (
	dtypes   = []string{"FP32", "FP64", "FP16", "BF16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL", "BYTES"}
	keyNames = []string{"name", "shape", "datatype", "data", "parameters"}
	spaces   = []string{"", "", "", " ", "\n", "\t ", "\r\n"}
)

// randomBody writes a mostly valid V2 request with random shapes, values,
// key order, spacing, key spellings and unknown keys.
func randomBody(r *rand.Rand) string {
	ws := func() string { return spaces[r.IntN(len(spaces))] }
	var b strings.Builder
	b.WriteString("{" + ws())
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, `"id":%q,`, fmt.Sprint(r.IntN(1000)))
	}
	if r.IntN(5) == 0 {
		b.WriteString(`"parameters":{"timeout":` + strconv.Itoa(r.IntN(1e6)) + `,"binary_data_output":` + strconv.FormatBool(r.IntN(2) == 0) + `},`)
	}
	b.WriteString(`"inputs":` + ws() + "[")
	for i := range 1 + r.IntN(2) {
		if i > 0 {
			b.WriteString("," + ws())
		}
		dt := dtypes[r.IntN(len(dtypes))]
		shape := []int{1 + r.IntN(3), r.IntN(4)}[:1+r.IntN(2)]
		n := 1
		for _, d := range shape {
			n *= d
		}
		vals := make([]string, n)
		for j := range vals {
			vals[j] = randomValue(r, dt)
		}
		data := "[" + strings.Join(vals, ","+ws()) + "]"
		if len(shape) == 2 && r.IntN(2) == 0 { // nested
			rows := make([]string, shape[0])
			for k := range rows {
				rows[k] = "[" + strings.Join(vals[k*shape[1]:(k+1)*shape[1]], ",") + "]"
			}
			data = "[" + strings.Join(rows, ",") + "]"
		}
		shapeJSON, _ := json.Marshal(shape)
		fields := map[string]string{
			"name": fmt.Sprintf("%q", "in"+strconv.Itoa(i)), "shape": string(shapeJSON),
			"datatype": `"` + dt + `"`, "data": data, "parameters": `{"x":1}`,
		}
		order := r.Perm(len(keyNames))
		b.WriteString("{")
		for k, o := range order {
			if k > 0 {
				b.WriteString(",")
			}
			key := keyNames[o]
			switch r.IntN(12) {
			case 0:
				key = strings.ToUpper(key)
			case 1:
				key = `\u00` + strconv.FormatInt(int64(key[0]), 16) + key[1:]
			}
			b.WriteString(ws() + `"` + key + `"` + ws() + ":" + ws() + fields[keyNames[o]] + ws())
		}
		if r.IntN(4) == 0 {
			b.WriteString(`,"extra":{"a":[true,false,null,-1.5e3,"s\n"]}`)
		}
		b.WriteString("}")
	}
	b.WriteString("]")
	if r.IntN(3) == 0 {
		b.WriteString(`,"outputs":[{"name":"in0","parameters":{"binary_data":` + strconv.FormatBool(r.IntN(2) == 0))
		if r.IntN(2) == 0 {
			b.WriteString(`,"classification":` + strconv.Itoa(r.IntN(4)))
		}
		b.WriteString(`}}]`)
	}
	b.WriteString(ws() + "}")
	return b.String()
}

func randomValue(r *rand.Rand, dt string) string {
	switch dt {
	case "BOOL":
		return []string{"true", "false"}[r.IntN(2)]
	case "BYTES":
		return []string{`"a"`, `"\u00e9"`, `"\"q\""`, `""`, `"\ud83d\ude00"`}[r.IntN(5)]
	case "FP32", "FP64", "FP16", "BF16":
		switch r.IntN(6) {
		case 0:
			return strconv.FormatFloat(r.NormFloat64()*1e3, 'g', -1, 64)
		case 1:
			return strconv.FormatFloat(r.Float64(), 'e', r.IntN(20), 64)
		case 2:
			return `"NaN"`
		case 3:
			return strconv.Itoa(r.IntN(200) - 100)
		}
		return strconv.FormatFloat(float64(r.Float32()*100), 'f', r.IntN(8), 32)
	}
	if dt[0] == 'U' {
		return strconv.Itoa(r.IntN(300))
	}
	return strconv.Itoa(r.IntN(300) - 150)
}

// mutate damages a body: a byte changed, dropped or inserted, or the end cut.
func mutate(r *rand.Rand, s string) string {
	if s == "" {
		return s
	}
	const alphabet = `{}[]":,. -+eE0123456789tfnulrsa\` + "\x00\xff\xc3"
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

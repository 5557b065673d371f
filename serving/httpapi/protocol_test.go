package httpapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

const linearBody = `{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}`

func TestEndpoints(t *testing.T) {
	h, m := linearHandler(t, httpapi.WithServerInfo("svc", "9"))
	v2 := servingtest.Linear(2)
	if err := h.Handle("linear", v2, httpapi.Version("2")); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle("linear", v2, httpapi.Version("2")); err == nil {
		t.Error("registering a version twice succeeded")
	}
	w := call(t, h, "GET", "/v2", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"svc"`) || !strings.Contains(w.Body.String(), `"version":"9"`) {
		t.Errorf("GET /v2: %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/linear/ready", "/v2/models/linear/versions/2/ready"} {
		if w := call(t, h, "GET", p, ""); w.Code != 200 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
	w = call(t, h, "GET", "/v2/models/linear", "")
	var md struct {
		Name     string
		Versions []string
		Platform string
		Inputs   []struct {
			Name, Datatype string
			Shape          []int64
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil || md.Name != "linear" || md.Platform != "servingtest" ||
		len(md.Inputs) != 1 || md.Inputs[0].Datatype != "FP32" || md.Inputs[0].Shape[0] != -1 || len(md.Versions) != 1 {
		t.Errorf("metadata %s (%v)", w.Body, err)
	}
	if w := call(t, h, "GET", "/v2/models/linear/versions/2", ""); !strings.Contains(w.Body.String(), `"versions":["2"]`) {
		t.Errorf("version metadata %s", w.Body)
	}

	r := decodeResp(t, call(t, h, "POST", "/v2/models/linear/infer", linearBody))
	if r.ID != "r1" || r.ModelName != "linear" || r.ModelVersion != "" || string(r.Outputs[0].Data) != "[3,5,7,9]" {
		t.Errorf("infer: %+v", r)
	}
	r = decodeResp(t, call(t, h, "POST", "/v2/models/linear/versions/2/infer", linearBody))
	if r.ModelVersion != "2" {
		t.Errorf("versioned infer answered as %q", r.ModelVersion)
	}
	if m.Calls() != 1 || v2.Calls() != 1 {
		t.Errorf("calls default %d, v2 %d", m.Calls(), v2.Calls())
	}

	m.Close()
	for _, p := range []string{"/v2/health/ready", "/v2/models/linear/ready"} {
		if w := call(t, h, "GET", p, ""); w.Code != 503 || w.Header().Get("Retry-After") != "1" {
			t.Errorf("GET %s after close: %d %q", p, w.Code, w.Header().Get("Retry-After"))
		}
	}
	wantError(t, call(t, h, "POST", "/v2/models/linear/infer", linearBody), 503, "not ready")
	if w := call(t, h, "GET", "/v2/health/live", ""); w.Code != 200 {
		t.Errorf("live after close: %d", w.Code)
	}
	if !h.Remove("linear", "2") || h.Remove("linear", "2") || !h.Remove("linear", "") {
		t.Error("Remove")
	}
	wantError(t, call(t, h, "GET", "/v2/models/linear", ""), 404, "unknown model")
}

func TestDefaultVersion(t *testing.T) {
	h := httpapi.New()
	v1, v2 := servingtest.Linear(2), servingtest.Linear(2)
	_ = h.Handle("m", v1, httpapi.Version("1"))
	_ = h.Handle("m", v2, httpapi.Version("2"), httpapi.Default())
	r := decodeResp(t, call(t, h, "POST", "/v2/models/m/infer", linearBody))
	if r.ModelVersion != "2" || v2.Calls() != 1 {
		t.Errorf("default went to %q", r.ModelVersion)
	}
	h.Remove("m", "2")
	if r := decodeResp(t, call(t, h, "POST", "/v2/models/m/infer", linearBody)); r.ModelVersion != "1" {
		t.Errorf("after removing the default: %q", r.ModelVersion)
	}
	if got := h.Models(); len(got) != 1 || got[0] != "m" {
		t.Errorf("Models %v", got)
	}
}

// TestResolvedVersionReachesPredictor: a request addressed without a
// version reaches the Predictor with the version the handler resolved, so a
// cache below keys both addressings of one model version alike.
func TestResolvedVersionReachesPredictor(t *testing.T) {
	h := httpapi.New()
	rec := servingtest.NewRecorder(servingtest.Linear(2))
	_ = h.Handle("m", rec, httpapi.Version("7"))
	call(t, h, "POST", "/v2/models/m/infer", linearBody)
	call(t, h, "POST", "/v2/models/m/versions/7/infer", linearBody)
	call(t, h, "POST", "/v1/models/m:predict", `{"instances":[[1,2]]}`)
	reqs := rec.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests reached the model, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Version != "7" || r.Model != "m" {
			t.Errorf("request %d reached the model as %q version %q, want m version 7", i, r.Model, r.Version)
		}
	}
}

// TestDatatypes round-trips every datatype through JSON and through the
// binary extension.
func TestDatatypes(t *testing.T) {
	h := httpapi.New()
	_ = h.Handle("echo", echo())
	cases := []struct{ dt, in, out string }{
		{"BOOL", `[true,false]`, `[true,false]`},
		{"UINT8", `[0,255]`, `[0,255]`},
		{"UINT16", `[0,65535]`, `[0,65535]`},
		{"UINT32", `[0,4294967295]`, `[0,4294967295]`},
		{"UINT64", `[0,18446744073709551615]`, `[0,18446744073709551615]`},
		{"INT8", `[-128,127]`, `[-128,127]`},
		{"INT16", `[-32768,32767]`, `[-32768,32767]`},
		{"INT32", `[-2147483648,2.0]`, `[-2147483648,2]`},
		{"INT64", `[-9223372036854775808,9223372036854775807]`, `[-9223372036854775808,9223372036854775807]`},
		{"FP16", `[1.5,-65504]`, `[1.5,-65504]`},
		{"BF16", `[1.5,-2]`, `[1.5,-2]`},
		{"FP32", `[0.1,-3e38]`, `[0.1,-3e+38]`},
		{"FP64", `[0.1,1e300]`, `[0.1,1e+300]`},
		{"BYTES", `["a\"b","\u00e9\n"]`, `["a\"b","é\n"]`},
	}
	for _, c := range cases {
		t.Run(c.dt, func(t *testing.T) {
			body := `{"inputs":[{"name":"t","shape":[2],"datatype":"` + c.dt + `","data":` + c.in + `}]}`
			r := decodeResp(t, call(t, h, "POST", "/v2/models/echo/infer", body))
			if o := r.Outputs[0]; o.Datatype != c.dt || string(o.Data) != c.out {
				t.Errorf("%s: got %s %s, want %s", c.dt, o.Datatype, o.Data, c.out)
			}
			// Binary: ask for the output raw, decode it, and send it back raw.
			w := call(t, h, "POST", "/v2/models/echo/infer",
				`{"inputs":[{"name":"t","shape":[2],"datatype":"`+c.dt+`","data":`+c.in+`}],"outputs":[{"name":"t","parameters":{"binary_data":true}}]}`)
			if w.Code != 200 || w.Header().Get("Content-Type") != "application/octet-stream" {
				t.Fatalf("binary answer %d %q", w.Code, w.Header().Get("Content-Type"))
			}
			n, _ := strconv.Atoi(w.Header().Get(httpapi.HeaderContentLength))
			raw := w.Body.Bytes()[n:]
			hdr := `{"inputs":[{"name":"t","shape":[2],"datatype":"` + c.dt + `","parameters":{"binary_data_size":` + strconv.Itoa(len(raw)) + `}}]}`
			w = call(t, h, "POST", "/v2/models/echo/infer", hdr+string(raw), httpapi.HeaderContentLength, strconv.Itoa(len(hdr)))
			if r := decodeResp(t, w); string(r.Outputs[0].Data) != c.out {
				t.Errorf("binary round trip of %s: %s", c.dt, r.Outputs[0].Data)
			}
		})
	}
}

func TestNestedAndScalar(t *testing.T) {
	h := httpapi.New()
	_ = h.Handle("echo", echo())
	r := decodeResp(t, call(t, h, "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"t","shape":[2,3],"datatype":"INT32","data":[[1,2,3],[4,5,6]]}]}`))
	if string(r.Outputs[0].Data) != "[1,2,3,4,5,6]" || r.Outputs[0].Shape[1] != 3 {
		t.Errorf("nested: %+v", r.Outputs[0])
	}
	r = decodeResp(t, call(t, h, "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"t","shape":[],"datatype":"FP64","data":2.5}]}`))
	if string(r.Outputs[0].Data) != "[2.5]" {
		t.Errorf("scalar: %s", r.Outputs[0].Data)
	}
	r = decodeResp(t, call(t, h, "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"t","shape":[0,3],"datatype":"FP32","data":[]}]}`))
	if string(r.Outputs[0].Data) != "[]" {
		t.Errorf("empty: %s", r.Outputs[0].Data)
	}
}

func TestNonFinite(t *testing.T) {
	in := `{"inputs":[{"name":"t","shape":[3],"datatype":"FP32","data":["NaN","Infinity","-Infinity"]}]}`
	for mode, want := range map[httpapi.NonFinite]string{
		httpapi.NonFiniteString: `["NaN","Infinity","-Infinity"]`,
		httpapi.NonFiniteBare:   `[NaN,Infinity,-Infinity]`,
		httpapi.NonFiniteNull:   `[null,null,null]`,
	} {
		h := httpapi.New(httpapi.WithNonFinite(mode))
		_ = h.Handle("echo", echo())
		w := call(t, h, "POST", "/v2/models/echo/infer", in)
		if !strings.Contains(w.Body.String(), `"data":`+want) {
			t.Errorf("mode %d: %s", mode, w.Body)
		}
	}
	h := httpapi.New()
	_ = h.Handle("echo", echo())
	wantError(t, call(t, h, "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"t","shape":[1],"datatype":"FP32","data":[NaN]}]}`), 400, "malformed")
	w := call(t, h, "POST", "/v2/models/echo/infer", `{"inputs":[{"name":"t","shape":[2],"datatype":"FP16","data":["NaN","-Infinity"]}]}`)
	if !strings.Contains(w.Body.String(), `["NaN","-Infinity"]`) {
		t.Errorf("FP16 non-finite: %s", w.Body)
	}
}

func TestParamsOutputsAndID(t *testing.T) {
	rec := servingtest.NewRecorder(servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		a, _ := serving.NewTensor("a", []int64{1}, []float32{1})
		b, _ := serving.NewTensor("b", []int64{1}, []int64{2})
		return &serving.Response{Outputs: []serving.Tensor{a, b}, Version: "7"}, nil
	}))
	h := httpapi.New()
	_ = h.Handle("m", rec)
	body := `{"id":"x-1","parameters":{"timeout":5000000,"priority":1,"cache_bypass":true},"inputs":[{"name":"i","shape":[1],"datatype":"INT64","data":[1]}],"outputs":[{"name":"b"}]}`
	r := decodeResp(t, call(t, h, "POST", "/v2/models/m/infer", body))
	if r.ID != "x-1" || len(r.Outputs) != 1 || r.Outputs[0].Name != "b" || r.ModelVersion != "7" {
		t.Errorf("answer %+v", r)
	}
	p := rec.Requests()[0].Params
	if to, _ := p.Timeout(); to != 5*time.Second {
		t.Errorf("timeout %v", to)
	}
	if pr, _ := p.Int(serving.ParamPriority); pr != 1 {
		t.Errorf("priority %v", p)
	}
	if cb, _ := p.Bool(serving.ParamCacheBypass); !cb {
		t.Errorf("cache_bypass %v", p)
	}
	// binary_data_output makes every output raw; JSON-only outputs stay JSON.
	w := call(t, h, "POST", "/v2/models/m/infer", `{"parameters":{"binary_data_output":true},"inputs":[{"name":"i","shape":[1],"datatype":"INT64","data":[1]}],"outputs":[{"name":"a","parameters":{"binary_data":false}},{"name":"b"}]}`)
	n, _ := strconv.Atoi(w.Header().Get(httpapi.HeaderContentLength))
	if raw := w.Body.Bytes()[n:]; len(raw) != 8 || binary.LittleEndian.Uint64(raw) != 2 || !strings.Contains(w.Body.String()[:n], `"data":[1]`) {
		t.Errorf("mixed binary answer %q", w.Body)
	}
}

func TestBinaryRequestFP32(t *testing.T) {
	h, _ := linearHandler(t)
	raw := make([]byte, 0, 16)
	for _, f := range []float32{1, 2, 3, 4} {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
	}
	hdr := `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`
	w := call(t, h, "POST", "/v2/models/linear/infer", hdr+string(raw), httpapi.HeaderContentLength, strconv.Itoa(len(hdr)))
	n, _ := strconv.Atoi(w.Header().Get(httpapi.HeaderContentLength))
	out := w.Body.Bytes()[n:]
	if len(out) != 16 || math.Float32frombits(binary.LittleEndian.Uint32(out[12:])) != 9 {
		t.Fatalf("binary answer %d %q", w.Code, w.Body)
	}
	if !bytes.Contains(w.Body.Bytes()[:n], []byte(`"binary_data_size":16`)) {
		t.Errorf("header %s", w.Body.Bytes()[:n])
	}
	for name, c := range map[string]struct{ body, hlen string }{
		"short":    {hdr + string(raw[:12]), strconv.Itoa(len(hdr))},
		"trailing": {hdr + string(raw) + "xx", strconv.Itoa(len(hdr))},
		"hlen big": {hdr + string(raw), "9999"},
		"hlen bad": {hdr + string(raw), "-1"},
	} {
		wantError(t, call(t, h, "POST", "/v2/models/linear/infer", c.body, httpapi.HeaderContentLength, c.hlen), 400, "")
		_ = name
	}
}

// TestRequestsOwnTheirMemory checks what a Predictor keeps from a request
// (names, ids, data carved from the decoder's room) stays intact while later
// requests are decoded.
func TestRequestsOwnTheirMemory(t *testing.T) {
	rec := servingtest.NewRecorder(echo())
	h := httpapi.New()
	_ = h.Handle("echo", rec)
	body := func(i int) string {
		n := strconv.Itoa(i)
		return `{"id":"req` + n + `","inputs":[{"name":"in` + n + `","shape":[2],"datatype":"FP32","data":[` + n + `,` + n + `.5]}]}`
	}
	for i := range 50 {
		decodeResp(t, call(t, h, "POST", "/v2/models/echo/infer", body(i)))
	}
	for i, req := range rec.Requests() {
		v, _ := serving.Values[float32](req.Inputs[0])
		n := strconv.Itoa(i)
		if req.ID != "req"+n || req.Inputs[0].Name != "in"+n || v[0] != float32(i) || v[1] != float32(i)+0.5 {
			t.Fatalf("request %d now reads %q %q %v", i, req.ID, req.Inputs[0].Name, v)
		}
	}
}

// TestInferRouting checks the paths the infer fast path leaves to the
// ServeMux: escaped names, custom routes under /v2/models/, other methods.
func TestInferRouting(t *testing.T) {
	h := httpapi.New(httpapi.WithInferRoute("/v2/models/special/infer", "linear"))
	_ = h.Handle("linear", servingtest.Linear(2))
	_ = h.Handle("a/b", servingtest.Linear(2))
	for _, p := range []string{"/v2/models/a%2Fb/infer", "/v2/models/special/infer", "/v2/models/linear/infer"} {
		if r := decodeResp(t, call(t, h, "POST", p, linearBody)); string(r.Outputs[0].Data) != "[3,5,7,9]" {
			t.Errorf("%s: %+v", p, r)
		}
	}
	plain := httpapi.New()
	_ = plain.Handle("a/b", servingtest.Linear(2))
	if w := call(t, plain, "POST", "/v2/models/a%2Fb/versions/1/infer", linearBody); w.Code != 404 {
		t.Errorf("unknown version of an escaped name: %d", w.Code)
	}
	if w := call(t, plain, "POST", "/v2/models/a%2Fb/infer", linearBody); w.Code != 200 {
		t.Errorf("escaped name: %d %s", w.Code, w.Body)
	}
	if w := call(t, plain, "PUT", "/v2/models/linear/infer", linearBody); w.Code == 200 {
		t.Error("PUT served as infer")
	}
}

package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestBadInput sends each kind of bad request and checks the 4xx JSON error,
// then that the handler still serves.
func TestBadInput(t *testing.T) {
	h, _ := linearHandler(t, httpapi.WithMaxBodyBytes(4096), httpapi.WithMaxElements(100))
	_ = h.Handle("echo", echo())
	in := func(shape, dt, data string) string {
		return `{"inputs":[{"name":"x","shape":` + shape + `,"datatype":"` + dt + `","data":` + data + `}]}`
	}
	cases := []struct {
		name, path, body string
		status           int
		contains         string
	}{
		{"malformed JSON", "linear", `{"inputs":[`, 400, "malformed"},
		{"not an object", "linear", `[1,2]`, 400, "malformed"},
		{"no inputs", "linear", `{}`, 400, "no inputs"},
		{"data short", "linear", in("[2,2]", "FP32", "[1,2,3]"), 400, "holds 4 elements, data has 3"},
		{"data long", "linear", in("[2,2]", "FP32", "[1,2,3,4,5]"), 400, "more elements"},
		{"ragged", "linear", in("[2,2]", "FP32", "[[1,2],[3]]"), 400, "ragged"},
		{"mixed depth", "linear", in("[2,2]", "FP32", "[[1,2],3,4]"), 400, "ragged"},
		{"wrong datatype for model", "linear", in("[2,2]", "INT32", "[1,2,3,4]"), 400, "datatype INT32, want FP32"},
		{"string for number", "linear", in("[1,2]", "FP32", `["a",1]`), 400, "number"},
		{"number for string", "echo", in("[1]", "BYTES", `[1]`), 400, "string"},
		{"int overflow", "echo", in("[1]", "INT8", `[128]`), 400, "INT8"},
		{"fraction for int", "echo", in("[1]", "INT32", `[1.5]`), 400, "INT32"},
		{"FP16 overflow", "echo", in("[1]", "FP16", `[70000]`), 400, "range"},
		{"FP32 overflow", "echo", in("[1]", "FP32", `[1e39]`), 400, "range"},
		{"bad bool", "echo", in("[1]", "BOOL", `[1]`), 400, "BOOL"},
		{"unknown datatype", "echo", in("[1]", "FP8", `[1]`), 400, "datatype"},
		{"negative dim", "echo", in("[-1]", "FP32", `[1]`), 400, "negative"},
		{"too many elements", "echo", in("[1000]", "FP32", `[1]`), 400, "limit"},
		{"absurd shape", "echo", in("[4294967296,4294967296]", "FP32", `[1]`), 400, "elements"},
		{"no shape", "echo", `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, 400, "shape"},
		{"no data", "echo", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}`, 400, "no data"},
		{"no name", "echo", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, 400, "no name"},
		{"duplicate inputs", "echo", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 400, "twice"},
		{"non-UTF-8 string", "echo", in("[1]", "BYTES", "[\"\xff\xfe\"]"), 400, "UTF-8"},
		{"non-UTF-8 id", "echo", "{\"id\":\"\xc3\x28\"," + in("[1]", "FP32", "[1]")[1:], 400, "UTF-8"},
		{"control char", "echo", in("[1]", "BYTES", "[\"a\x01\"]"), 400, ""},
		{"too deep", "echo", in("[1]", "FP32", strings.Repeat("[", 40)+"1"+strings.Repeat("]", 40)), 400, "deeper"},
		{"trailing garbage in data", "echo", in("[1]", "FP32", `[1 2]`), 400, ""},
		{"shape with a leading zero", "echo", in("[01]", "FP32", `[1]`), 400, "malformed"},
		{"shape with a trailing comma", "echo", in("[1, ]", "FP32", `[1]`), 400, "malformed"},
		{"shape of 65 dims", "echo", in("["+strings.Repeat("1,", 64)+"1]", "FP32", `[1]`), 400, "more than 64 dims"},
		{"shape dim of 19 digits", "echo", in("[1000000000000000000]", "FP32", `[1]`), 400, "elements"},
		{"trailing comma in data", "echo", in("[3]", "FP32", `[1, 2 ,]`), 400, "malformed"},
		{"array among values", "echo", in("[2]", "FP32", `[1, [2]]`), 400, "ragged"},
		{"data long, spaced", "linear", in("[2,2]", "FP32", "[1 , 2,\n3,\t4 ,5]"), 400, "more elements"},
		{"hex number", "echo", in("[1]", "FP32", `[0x10]`), 400, ""},
		{"unknown output", "linear", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"zz"}]}`, 404, "no output"},
		{"unknown model", "nope", in("[1]", "FP32", "[1]"), 404, "unknown model"},
		{"body over limit", "echo", in("[1]", "FP32", "["+strings.Repeat("1,", 3000)+"1]"), 413, "too large"},
		{"bad timeout", "echo", `{"parameters":{"timeout":"x"},` + in("[1]", "FP32", "[1]")[1:], 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := call(t, h, "POST", "/v2/models/"+c.path+"/infer", c.body)
			if c.status == 200 {
				if w.Code != 200 {
					t.Errorf("status %d: %s", w.Code, w.Body)
				}
				return
			}
			wantError(t, w, c.status, c.contains)
		})
	}
	wantError(t, call(t, h, "POST", "/v2/models/linear/versions/9/infer", linearBody), 404, "no version")
	wantError(t, call(t, h, "GET", "/v2/models/linear/versions/9", ""), 404, "no version")
	wantError(t, call(t, h, "GET", "/v2/nothing", ""), 404, "no route")
	wantError(t, call(t, h, "POST", "/v2/models/linear/infer", linearBody, "Timeout", "soon"), 400, "timeout")
	// Still serving.
	if r := decodeResp(t, call(t, h, "POST", "/v2/models/linear/infer", linearBody)); len(r.Outputs) != 1 {
		t.Error("no answer after bad requests")
	}
}

func TestErrorStatuses(t *testing.T) {
	cases := []struct {
		err        error
		status     int
		retryAfter string
	}{
		{serving.Errorf(serving.InvalidArgument, "bad"), 400, ""},
		{serving.Errorf(serving.NotFound, "nope"), 404, ""},
		{&serving.Error{Code: serving.ResourceExhausted, RetryAfter: 1500 * time.Millisecond}, 429, "2"},
		{serving.ErrOverloaded, 429, "1"},
		{serving.Errorf(serving.Unavailable, "down"), 503, "1"},
		{serving.Errorf(serving.DeadlineExceeded, "late"), 504, ""},
		{context.DeadlineExceeded, 504, ""},
		{serving.Errorf(serving.Unimplemented, "no"), 501, ""},
		{serving.Errorf(serving.Internal, "bug"), 500, ""},
		{context.Canceled, httpapi.StatusClientClosedRequest, ""},
	}
	for _, c := range cases {
		h := httpapi.New()
		_ = h.Handle("m", servingtest.Failing(c.err))
		w := call(t, h, "POST", "/v2/models/m/infer", linearBody)
		if w.Code != c.status || w.Header().Get("Retry-After") != c.retryAfter {
			t.Errorf("%v: status %d Retry-After %q, want %d %q", c.err, w.Code, w.Header().Get("Retry-After"), c.status, c.retryAfter)
		}
		if httpapi.Status(c.err) != c.status {
			t.Errorf("Status(%v) = %d", c.err, httpapi.Status(c.err))
		}
	}
	h := httpapi.New()
	_ = h.Handle("nil", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { return nil, nil }))
	wantError(t, call(t, h, "POST", "/v2/models/nil/infer", linearBody), 500, "no response")
}

// TestDeadlines checks parameters.timeout, the Timeout header (Go and
// grpc-timeout forms) and WithMaxTimeout all reach the Predictor as a deadline.
func TestDeadlines(t *testing.T) {
	slow := servingtest.Slow(time.Hour, servingtest.Linear(2))
	for name, c := range map[string]struct {
		opts []httpapi.Option
		body string
		hdr  []string
	}{
		"param":       {nil, `{"parameters":{"timeout":1000},` + linearBody[1:], nil},
		"header go":   {nil, linearBody, []string{"Timeout", "1ms"}},
		"header grpc": {nil, linearBody, []string{"Grpc-Timeout", "2m"}},
		"renamed":     {[]httpapi.Option{httpapi.WithTimeoutHeader("X-Deadline")}, linearBody, []string{"X-Deadline", "1ms"}},
		"max":         {[]httpapi.Option{httpapi.WithMaxTimeout(time.Millisecond)}, linearBody, nil},
	} {
		h := httpapi.New(c.opts...)
		_ = h.Handle("linear", slow)
		wantError(t, call(t, h, "POST", "/v2/models/linear/infer", c.body, c.hdr...), 504, "deadline")
		_ = name
	}
	// A client that leaves: the handler returns at once.
	h := httpapi.New()
	_ = h.Handle("linear", slow)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", "/v2/models/linear/infer", strings.NewReader(linearBody))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != httpapi.StatusClientClosedRequest {
		t.Errorf("canceled client: %d", w.Code)
	}
	for in, want := range map[string]time.Duration{"250m": 250 * time.Millisecond, "3S": 3 * time.Second, "5u": 5 * time.Microsecond, "1H": time.Hour} {
		if d, err := httpapi.ParseGRPCTimeout(in); err != nil || d != want {
			t.Errorf("ParseGRPCTimeout(%q) = %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"", "0m", "-1S", "10x", "1e3m", "123456789m"} {
		if _, err := httpapi.ParseGRPCTimeout(in); err == nil {
			t.Errorf("ParseGRPCTimeout(%q) succeeded", in)
		}
	}
	if d, err := httpapi.ParseTimeout("1m30s"); err != nil || d != 90*time.Second {
		t.Errorf("ParseTimeout: %v %v", d, err)
	}
	if _, err := httpapi.ParseTimeout("0s"); err == nil {
		t.Error("ParseTimeout(0s) succeeded")
	}
}

func TestMethodAndNotFound(t *testing.T) {
	h, _ := linearHandler(t)
	wantError(t, call(t, h, "GET", "/v2/models/linear/infer", ""), 404, "no route")
	if w := call(t, h, "HEAD", "/v2/health/ready", ""); w.Code != http.StatusOK {
		t.Errorf("HEAD ready: %d", w.Code)
	}
}

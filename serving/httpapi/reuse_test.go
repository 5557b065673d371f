package httpapi_test

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// The answer is written into the buffer the body was read into, so nothing
// the answer holds may point into the body: an echo of every kind of value
// the decoder keeps (a long id, long and escaped strings, raw binary data) must come back intact, in JSON and as binary data.
func TestAnswerDoesNotAliasBody(t *testing.T) {
	h := httpapi.New()
	if err := h.Handle("echo", echo()); err != nil {
		t.Fatal(err)
	}
	// The answer starts with the id, the request ends with it: written
	// over a body it aliased, the id would overwrite the input names
	// before they are read.
	id := strings.Repeat("id-", 100)
	name := strings.Repeat("s", 200)
	long := strings.Repeat("a", 300)
	js := `{"inputs":[` +
		`{"name":"` + name + `","shape":[3],"datatype":"BYTES","data":["` + long + `","b\u00e9\n","c"]},` +
		`{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}],` +
		`"outputs":[{"name":"` + name + `"},{"name":"x","parameters":{"binary_data":true}}],"id":"` + id + `"}`
	raw := binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5))
	raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(-2))
	w := call(t, h, "POST", "/v2/models/echo/infer", js+string(raw), httpapi.HeaderContentLength, strconv.Itoa(len(js)))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	n, err := strconv.Atoi(w.Header().Get(httpapi.HeaderContentLength))
	if err != nil {
		t.Fatalf("answer's %s: %v", httpapi.HeaderContentLength, err)
	}
	resp, err := oipjson.DecodeResponse(w.Body.Bytes(), n, oip.DefaultLimits)
	if err != nil {
		t.Fatalf("answer %q: %v", w.Body, err)
	}
	if resp.ID != id {
		t.Errorf("id %q, want %q", resp.ID, id)
	}
	s, _ := resp.Output(name)
	strs, _ := serving.Values[[]byte](s)
	x, _ := resp.Output("x")
	xs, _ := serving.Values[float32](x)
	if len(strs) != 3 || string(strs[0]) != long || string(strs[1]) != "bé\n" || string(strs[2]) != "c" ||
		len(xs) != 2 || xs[0] != 1.5 || xs[1] != -2 {
		t.Errorf("echo came back as %q and %v", strs, xs)
	}
}

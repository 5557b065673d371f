package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// FuzzPredictV1 posts fuzzed bodies to the V1 predict routes, which decode
// {"instances": ...} and {"inputs": ...} against the model's metadata (and
// take a V2 body too): the handler must never answer 500 or panic, never
// allocate more than serving.DecodeBudget of the body, what it answers must
// be JSON, and a 200 must come from valid JSON. One model has a single FP32
// input (instances are rows), the other two named inputs of different types
// (instances are objects). The seed corpus is in testdata/fuzz/FuzzPredictV1,
// plus issue 18's hostile V1 requests (hostile_test.go) at 4 KiB.
func FuzzPredictV1(f *testing.F) {
	for _, s := range []string{
		`{"instances":[[1,2],[3,4]]}`,
		`{"instances":[{"x":[1,2]}]}`,
		`{"inputs":[[1,2]]}`,
		`{"inputs":{"x":[[1,2]]}}`,
		`{"signature_name":"serving_default","instances":[[0.5,"NaN"]]}`,
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`,
		`{"instances":[{"a":[1,2,3,4],"b":[5,6]},{"a":[0,0,0,0],"b":[-1,2]}]}`,
		`{"instances":[{"a":[1,2,3,4]}]}`,
		`{"instances":[]}`,
		`{"instances":[[1,2],[3]]}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	for _, a := range hostileRequests(4 << 10) {
		if a.path != pathV2 {
			f.Add(a.body, a.path == pathV1Typed)
		}
	}
	h := httpapi.New(httpapi.WithMaxElements(1 << 12))
	if err := h.Handle("linear", servingtest.Linear(2)); err != nil {
		f.Fatal(err)
	}
	multi := echo().WithMetadata(serving.Metadata{
		Name: "multi",
		Inputs: []serving.TensorSpec{
			{Name: "a", DataType: serving.FP32, Shape: []int64{-1, 4}},
			{Name: "b", DataType: serving.Int64, Shape: []int64{-1, 2}},
		},
		Outputs: []serving.TensorSpec{
			{Name: "a", DataType: serving.FP32, Shape: []int64{-1, 4}},
			{Name: "b", DataType: serving.Int64, Shape: []int64{-1, 2}},
		},
	})
	if err := h.Handle("multi", multi); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, second bool) {
		path := "/v1/models/linear:predict"
		if second {
			path = "/v1/models/multi:predict"
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		got := alloctest.Once(func() { h.ServeHTTP(w, r) })
		if budget := serving.DecodeBudget(int64(len(body))); !alloctest.Race && int64(got) > budget {
			t.Fatalf("%s %q: allocated %d bytes, over the budget of %d", path, body, got, budget)
		}
		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", path, body, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: answer is not JSON: %q", path, body, w.Body)
		}
		if w.Code == http.StatusOK && (!json.Valid(body) || !utf8.Valid(body)) {
			t.Fatalf("%s: accepted invalid JSON %q", path, body)
		}
	})
}

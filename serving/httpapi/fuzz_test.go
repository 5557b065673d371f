package httpapi_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
)

// FuzzDecodeRequest feeds the V2 decoder JSON and binary bodies: it must
// never panic, never allocate more than serving.DecodeBudget of the body,
// and what it accepts must be valid tensors within the limit. The seed
// corpus is in testdata/fuzz/FuzzDecodeRequest, plus issue 18's hostile V2
// requests (hostile_test.go) at 4 KiB.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(linearBody), -1)
	f.Add([]byte(`{"inputs":[{"name":"t","shape":[2,2],"datatype":"BYTES","data":[["a","b"],["\u00e9","\n"]]}]}`), -1)
	f.Add([]byte(`{"inputs":[{"name":"t","shape":[3],"datatype":"FP16","data":["NaN",1.5,-2]}],"outputs":[{"name":"t","parameters":{"binary_data":true}}]}`), -1)
	hdr := `{"inputs":[{"name":"t","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}}]}`
	f.Add([]byte(hdr+"\x01\x00\x00\x00a\x01\x00\x00\x00b"), len(hdr))
	hdr = `{"inputs":[{"name":"t","shape":[2],"datatype":"INT16","parameters":{"binary_data_size":4}}]}`
	f.Add([]byte(hdr+"\x01\x00\x02\x00"), len(hdr))
	for _, a := range hostileRequests(4 << 10) {
		if a.path == pathV2 {
			f.Add(a.body, a.jsonLen)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, jsonLen int) {
		if jsonLen > len(body) {
			jsonLen = len(body)
		}
		const limit = 1 << 12
		var req *serving.Request
		var err error
		got := alloctest.Once(func() { req, err = httpapi.DecodeRequest(body, jsonLen, limit) })
		if budget := serving.DecodeBudget(int64(len(body))); !alloctest.Race && int64(got) > budget {
			t.Fatalf("%q: allocated %d bytes, over the budget of %d", body, got, budget)
		}
		if err != nil {
			return
		}
		js := body
		if jsonLen >= 0 {
			js = body[:jsonLen]
		}
		if !json.Valid(js) || !utf8.Valid(js) {
			t.Fatalf("accepted invalid JSON %q", js)
		}
		for _, in := range req.Inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted an invalid tensor: %v", err)
			}
			if in.Len() > limit {
				t.Fatalf("accepted %d elements over the limit", in.Len())
			}
		}
		_ = strconv.Itoa(len(req.Inputs))
	})
}

package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving/httpapi"
)

// Every answer, short or long, success or error, goes out with its
// Content-Length and never chunked: keep-alive clients and proxies that
// read a length (and the Node peer's client) rely on it. Short answers get
// theirs from net/http, which measures what fits its buffer; the handler
// sets it on longer ones.
func TestAnswersCarryContentLength(t *testing.T) {
	h := httpapi.New()
	if err := h.Handle("fraud", fraudModel()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	rows := func(n int) string {
		r := strings.Repeat("[0.12,-1.5,3.25,0.5,12.75,-0.001,7,0.333],", n)
		return `{"inputs":[{"name":"features","shape":[` + strconv.Itoa(n) + `,8],"datatype":"FP32","data":[` + r[:len(r)-1] + `]}]}`
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
		long             bool // answer longer than net/http's 2 KiB buffer
	}{
		{"short", "/v2/models/fraud/infer", fraudBody, 200, false},
		{"long", "/v2/models/fraud/infer", rows(400), 200, true},
		{"error", "/v2/models/fraud/infer", `{"inputs":[`, 400, false},
		{"long error", "/v2/models/nope" + strings.Repeat("x", 3000) + "/infer", "{}", 404, true},
	} {
		resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || resp.ContentLength != int64(len(b)) || len(resp.TransferEncoding) != 0 ||
			resp.Header.Get("Content-Type") != "application/json" || (len(b) > 2048) != tc.long {
			t.Errorf("%s: %d, Content-Length %d for %d bytes, Transfer-Encoding %v, Content-Type %q",
				tc.name, resp.StatusCode, resp.ContentLength, len(b), resp.TransferEncoding, resp.Header.Get("Content-Type"))
		}
	}
}

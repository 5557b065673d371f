package grpcapi_test

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
)

// TestDecodeBudget sends every hostile request through the real handler
// (gRPC framing, compressed or not, and Connect JSON) and fails when
// answering it allocates more than serving.DecodeBudget of its message:
// the contract of serving's package doc. A compressed message is reckoned
// at its inflated size, at most the message limit. `go test -v` prints each
// ratio and the worst per transport.
func TestDecodeBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts under -race are skewed; make test runs this without it")
	}
	size := 512 << 10
	if testing.Short() {
		size = 128 << 10
	}
	h := hostileHandler(t)
	worst := map[string]float64{}
	for _, a := range hostileRequests(size) {
		var w *httptest.ResponseRecorder
		body := a.framed()
		got := alloctest.Bytes(2, func() {
			w = httptest.NewRecorder()
			h.ServeHTTP(w, a.request(body))
		})
		n := a.size()
		if a.gzip || a.declare > 0 {
			n = min(n, 4<<20+1)
		}
		budget := serving.DecodeBudget(int64(n))
		ratio := float64(got) / float64(n)
		t.Logf("%-14s %-40s %9d B -> %9d B (%5.2f x) %s", a.transport, a.name, n, got, ratio, answer(w))
		if int64(got) > budget {
			t.Errorf("%s %s: allocated %d bytes, over the budget of %d", a.transport, a.name, got, budget)
		}
		if n >= size/2 && !a.gzip && a.declare == 0 {
			worst[a.transport] = max(worst[a.transport], ratio)
		}
	}
	for tr, r := range worst {
		t.Logf("worst ratio at %d KiB, %s: %.2f", size>>10, tr, r)
	}
}

// answer is the answer's gRPC status (a trailer) or HTTP status and error.
func answer(w *httptest.ResponseRecorder) string {
	res := w.Result()
	if s := res.Trailer.Get("Grpc-Status"); s != "" {
		return "grpc-status " + s + " " + res.Trailer.Get("Grpc-Message")
	}
	b := w.Body.String()
	if len(b) > 80 || w.Code == 200 {
		b = b[:min(len(b), 80)]
	}
	return strconv.Itoa(w.Code) + " " + strings.ToValidUTF8(b, "?")
}

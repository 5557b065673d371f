package httpapi_test

import (
	"net/http/httptest"
	"testing"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/serving"
)

// TestDecodeBudget sends every hostile request through the real handler
// and fails when answering it allocates more than serving.DecodeBudget of
// its body: the contract of serving's package doc, on every HTTP decoder.
// The requests are about 512 KiB, where the budget's constant is a small
// part, so a decoder that amplifies shows. `go test -v` prints each ratio
// and the worst per transport (the README's figures).
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
		got := alloctest.Bytes(2, func() {
			w = httptest.NewRecorder()
			h.ServeHTTP(w, a.request())
		})
		budget := serving.DecodeBudget(int64(len(a.body)))
		ratio := float64(got) / float64(max(len(a.body), 1))
		t.Logf("%-58s %8d B -> %9d B (%5.2f x) %d", a.name, len(a.body), got, ratio, w.Code)
		if int64(got) > budget {
			t.Errorf("%v: allocated %d bytes, over the budget of %d", a, got, budget)
		}
		if w.Code >= 500 {
			t.Errorf("%v: status %d: %s", a, w.Code, w.Body)
		}
		if len(a.body) >= size/2 {
			worst[a.transport()] = max(worst[a.transport()], ratio)
		}
	}
	for tr, r := range worst {
		t.Logf("worst ratio at %d KiB, %s: %.2f", size>>10, tr, r)
	}
}

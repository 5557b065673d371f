package httpapi_test

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving/httpapi"
)

// Paths that once compared every pair of a request's items (issue 18 row 4:
// 60,000 empty inputs took 13 s of CPU), at 1k, 10k and 60k items with the
// caps raised out of the way: ns/item must stay flat as n grows.
//
//	go test -run '^$' -bench Linear ./serving/httpapi

func BenchmarkLinearInputs(b *testing.B) {
	benchItems(b, func(n int) string {
		return v2(items(n, func(i int) string {
			return `{"name":"i` + strconv.Itoa(i) + `","datatype":"FP32","shape":[0],"data":[]}`
		}))
	}, pathV2, 200)
}

func BenchmarkLinearOutputs(b *testing.B) {
	benchItems(b, func(n int) string {
		return `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[0]}],"outputs":[` +
			items(n, func(i int) string { return `{"name":"o` + strconv.Itoa(i) + `","parameters":{"binary_data":true}}` }) + "]}"
	}, pathV2, 404) // the model has none of those outputs: decoded, then refused
}

func BenchmarkLinearV1Names(b *testing.B) {
	benchItems(b, func(n int) string {
		return `{"instances":[{` + items(n, func(i int) string { return `"n` + strconv.Itoa(i) + `":0` }) + `}]}`
	}, pathV1, 200)
}

func items(n int, item func(int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = item(i)
	}
	return strings.Join(parts, ",")
}

func benchItems(b *testing.B, body func(n int) string, path string, status int) {
	for _, n := range []int{1000, 10000, 60000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			h := httpapi.New(httpapi.WithMaxInputs(1<<20), httpapi.WithMaxOutputs(1<<20), httpapi.WithMaxBodyBytes(64<<20))
			if err := h.Handle("m", sink()); err != nil {
				b.Fatal(err)
			}
			a := hostile{path: path, body: []byte(body(n)), jsonLen: -1}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, a.request())
			if w.Code != status {
				b.Fatalf("status %d: %.200s", w.Code, w.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), a.request())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
		})
	}
}

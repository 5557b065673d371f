package rollout_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// routes compares a bare model with the router's ways of reaching it, on
// the cheapest model there is, so the difference is the router's cost:
// compare the lines of one run (ns/op minus bare).
func routes(b *testing.B) []struct {
	name string
	p    serving.Predictor
	req  func(i int) *serving.Request
} {
	r := rollout.New("linear", quiet)
	b.Cleanup(func() { r.Close() })
	mustPut(b, r, "1", servingtest.Linear(4))
	mustPut(b, r, "2", servingtest.Linear(4))
	if err := r.SetWeights(map[string]float64{"1": 90, "2": 10}); err != nil {
		b.Fatal(err)
	}
	base := servingtest.Rows(4, 1, 0)
	keys := make([]*serving.Request, 1024)
	for i := range keys {
		keys[i] = base.Clone()
		keys[i].Key = "user-" + strconv.Itoa(i)
	}
	pinned := base.Clone()
	pinned.Version = "2"
	direct := base.Clone()
	direct.Version = "1" // as the router passes it on: no copy needed
	return []struct {
		name string
		p    serving.Predictor
		req  func(i int) *serving.Request
	}{
		{"bare", servingtest.Linear(4), func(int) *serving.Request { return direct }},
		{"keyed", r, func(i int) *serving.Request { return keys[i%len(keys)] }},
		{"unkeyed", r, func(int) *serving.Request { return base }},
		{"pinned", r, func(int) *serving.Request { return pinned }},
	}
}

func BenchmarkRoute(b *testing.B) {
	for _, c := range routes(b) {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.p.Predict(ctx, c.req(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRouteParallel is the same from all cores at once, where the
// reference counts and stats counters are shared.
func BenchmarkRouteParallel(b *testing.B) {
	for _, c := range routes(b) {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := c.p.Predict(ctx, c.req(i)); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

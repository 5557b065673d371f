package limit_test

import (
	"context"
	"testing"

	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// BenchmarkLimiter compares a call through a limiter that always has a free
// slot with the same call without it: the cost every admitted request pays.
func BenchmarkLimiter(b *testing.B) {
	model := servingtest.Static()
	limited, err := limit.New(model, limit.WithMaxInFlight(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer limited.Close()
	for _, c := range []struct {
		name string
		p    serving.Predictor
	}{{"direct", model}, {"limited", limited}} {
		b.Run(c.name, func(b *testing.B) {
			req := &serving.Request{Model: "m"}
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.p.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

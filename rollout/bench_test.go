package rollout_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

// constant is the cheapest model there is: it answers every request with
// the same response, allocating nothing, so what a benchmark measures on
// top of it is the router's own cost.
type constant struct{ resp *serving.Response }

func (c constant) Predict(context.Context, *serving.Request) (*serving.Response, error) {
	return c.resp, nil
}

func newConstant(v string) constant { return constant{&serving.Response{Version: v}} }

// routes compares the bare model with the router's ways of reaching it:
// compare the lines of one run (ns/op minus bare).
func routes(b *testing.B) []struct {
	name string
	p    serving.Predictor
	req  func(i int) *serving.Request
} {
	router := func() *rollout.Router {
		r := newRouter(b, "m", quiet)
		b.Cleanup(func() { r.Close() })
		mustPut(b, r, "1", newConstant("1"))
		mustPut(b, r, "2", newConstant("2"))
		if err := r.SetWeights(map[string]float64{"1": 90, "2": 10}); err != nil {
			b.Fatal(err)
		}
		return r
	}
	r := router()
	keys := make([]*serving.Request, 1024)
	for i := range keys {
		keys[i] = &serving.Request{Key: "user-" + strconv.Itoa(i)}
	}
	unkeyed := &serving.Request{}
	pinned := &serving.Request{Version: "2"}
	return []struct {
		name string
		p    serving.Predictor
		req  func(i int) *serving.Request
	}{
		{"bare", newConstant("1"), func(int) *serving.Request { return unkeyed }},
		{"keyed", r, func(i int) *serving.Request { return keys[i%len(keys)] }},
		{"unkeyed", r, func(int) *serving.Request { return unkeyed }},
		{"pinned", r, func(int) *serving.Request { return pinned }},
	}
}

func BenchmarkRoute(b *testing.B) {
	for _, c := range routes(b) {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			defer cpuPerOp(b)()
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
			defer cpuPerOp(b)()
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

// cpuPerOp reports the process's CPU time (user + system) per operation as
// cpu-ns/op, next to ns/op: on a machine shared with other work, wall time
// per op swings with the neighbours' load, CPU time much less.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

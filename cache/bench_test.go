package cache_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// Run side by side, e.g.:
//
//	go test -run '^$' -bench . -benchmem -benchtime 200ms ./cache
//
// Targets: a hit ≤ 1 µs and ≥ 10× faster than FraudMLP/miss; at two
// goroutines on two cores a hit costs no more than at one (no lock
// contention to speak of: see the package doc).

const benchWidth = 32

// benchRequests are distinct 32-float inputs, as distinct clients send.
func benchRequests(n int) []*serving.Request {
	reqs := make([]*serving.Request, n)
	for i := range reqs {
		reqs[i] = servingtest.Rows(benchWidth, 1, float32(i*benchWidth))
	}
	return reqs
}

// BenchmarkHit is the hit path, alone and with one miss in ten (a store
// under the L1 lock, with an eviction), on one goroutine and on two
// goroutines on two cores. ns/op is wall time per request over all
// goroutines: goroutines=2 at half of goroutines=1 would be perfect scaling.
func BenchmarkHit(b *testing.B) {
	for _, mix := range []string{"hits", "hits+10%misses"} {
		for _, g := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", mix, g), func(b *testing.B) {
				c := newCache(b, cache.WithMaxEntries(512))
				p := c.Middleware()(servingtest.Linear(benchWidth))
				hot := benchRequests(256)
				for _, r := range hot {
					if _, err := p.Predict(context.Background(), r); err != nil {
						b.Fatal(err)
					}
				}
				cold := make([]*serving.Request, 4096) // more than the free entries: they keep missing
				for i := range cold {
					cold[i] = servingtest.Rows(benchWidth, 1, float32(-(i+1)*benchWidth))
				}
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(g))
				b.SetParallelism(1) // GOMAXPROCS × 1 goroutines
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					i := int(next.Add(1)) * 7919 // each goroutine walks its own sequence
					for pb.Next() {
						req := hot[i%len(hot)]
						if mix != "hits" && i%10 == 0 {
							req = cold[(i/10)%len(cold)]
						}
						if _, err := p.Predict(ctx, req); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		}
	}
}

// BenchmarkMiss is a miss with a new input every time on a model that
// answers at once with a one-float output, so it measures the cache's own
// work on a miss: hash, lookup, the copy of the request, the flight (in its
// own goroutine, as under HTTP, where contexts can end) and the store, at
// three input sizes. B/op shows how many copies of the input a miss makes.
func BenchmarkMiss(b *testing.B) {
	for _, width := range []int{8, 1024, 16384} {
		b.Run(fmt.Sprintf("input=%dB", 4*width), func(b *testing.B) {
			out, err := serving.NewTensor("y", []int64{1}, []float32{1})
			if err != nil {
				b.Fatal(err)
			}
			c := newCache(b, cache.WithMaxEntries(128))
			p := c.Middleware()(servingtest.Static(out))
			reqs := make([]*serving.Request, 256) // twice the entries: every request misses
			for i := range reqs {
				reqs[i] = servingtest.Rows(width, 1, float32(i*width))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := p.Predict(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if st := c.Stats(); st.HitsL1 != 0 {
				b.Fatalf("%d hits: the benchmark must miss", st.HitsL1)
			}
		})
	}
}

// BenchmarkBytesPerEntry reports the bytes an entry of a 32-float answer
// costs, as the cache accounts it and as the heap grows.
func BenchmarkBytesPerEntry(b *testing.B) {
	const n = 10_000
	reqs := benchRequests(n)
	for b.Loop() {
		c, err := cache.New(cache.WithMaxEntries(n))
		if err != nil {
			b.Fatal(err)
		}
		p := c.Middleware()(servingtest.Linear(benchWidth))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, r := range reqs {
			if _, err := p.Predict(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		st := c.Stats()
		b.ReportMetric(float64(st.Bytes)/float64(st.Entries), "B/entry")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(st.Entries), "heapB/entry")
		runtime.KeepAlive(reqs)
		c.Close()
	}
}

// fraud loads the demo MLP on ONNX Runtime, or skips.
func fraud(b *testing.B) serving.Predictor {
	m := orttest.Fraud(b)
	return m
}

func fraudRequest(v float32) *serving.Request {
	x := []float32{v, 0.5, 0.25, 1, 2, 3, 0.1, 0.2}
	t, err := serving.NewTensor("features", []int64{1, 8}, x)
	if err != nil {
		panic(err)
	}
	return &serving.Request{Model: "fraud", Inputs: []serving.Tensor{t}}
}

// BenchmarkFraudMLP compares a bare run of the demo model with a cache miss
// (a new input every time: hash, lookup, key, flight, model, store) and a hit.
func BenchmarkFraudMLP(b *testing.B) {
	b.Run("model", func(b *testing.B) {
		m := fraud(b)
		req := fraudRequest(1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Predict(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, cancellable := range []bool{false, true} {
		b.Run(fmt.Sprintf("miss/cancellable=%v", cancellable), func(b *testing.B) {
			p := newCache(b, cache.WithMaxEntries(4096)).Middleware()(fraud(b))
			ctx := context.Background()
			if cancellable { // a computation in its own goroutine, as under HTTP
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			reqs := make([]*serving.Request, 1<<16)
			for i := range reqs {
				reqs[i] = fraudRequest(float32(i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := p.Predict(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	b.Run("hit", func(b *testing.B) {
		p := newCache(b).Middleware()(fraud(b))
		req := fraudRequest(1)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Predict(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

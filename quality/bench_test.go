package quality_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRequests are single-row requests with distinct ids, answered by a
// model with the demo fraud model's output (one FP32 score) at once, so
// the benchmark measures what the middleware and its worker add.
func benchRequests(n int) ([]*serving.Request, serving.Predictor) {
	reqs := make([]*serving.Request, n)
	x, _ := serving.NewTensor("features", []int64{1, 8}, make([]float32, 8))
	for i := range reqs {
		reqs[i] = &serving.Request{ID: fmt.Sprintf("tx-%d", i), Model: "fraud", Version: "1", Inputs: []serving.Tensor{x}}
	}
	return reqs, benchModel()
}

func benchModel() serving.Predictor {
	r := rand.New(rand.NewPCG(1, 2))
	score, _ := serving.NewTensor("score", []int64{1, 1}, []float32{float32(r.Float64())})
	return servingtest.Static(score)
}

// benchIDs are distinct request ids: the ids alone are kept, not a
// request each, so the live heap the collector scans stays small.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("tx-%d", i)
	}
	return ids
}

// BenchmarkObserve measures one prediction through the quality middleware
// (each request with an id of its own, as live traffic):
// copying its score and hashing its request id on the request path, and
// the worker remembering it in the ring (once full, each one also forgets
// the oldest). The queue holds 65,536 predictions and is flushed every
// 4096 requests, so nothing is dropped and the worker's time counts;
// cpu-ns/prediction is the process's CPU time (both goroutines) per
// prediction. "baseline" is the model alone. "windows=1000"
// also closes a window every 1000 predictions with its CBPE estimate (a
// reference) and realized metrics: BenchmarkWindow has that cost alone.
func BenchmarkObserve(b *testing.B) {
	ids, model := benchIDs(1<<20), benchModel()
	x, _ := serving.NewTensor("features", []int64{1, 8}, make([]float32, 8))
	ref := benchReference(b)
	run := func(b *testing.B, p serving.Predictor, m *quality.Monitor) {
		ctx := context.Background()
		req := &serving.Request{Model: "fraud", Version: "1", Inputs: []serving.Tensor{x}}
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			req.ID = ids[i%len(ids)]
			if _, err := p.Predict(ctx, req); err != nil {
				b.Fatal(err)
			}
			if m != nil && i%4096 == 4095 {
				m.Flush(ctx)
			}
		}
		if m != nil {
			m.Flush(ctx)
			if d := m.Stats().Dropped; d > 0 {
				b.Fatalf("%d requests dropped: the measurement would miss their cost", d)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/prediction")
	}
	b.Run("baseline", func(b *testing.B) { run(b, model, nil) })
	for _, c := range []struct {
		name           string
		memory, window int
	}{
		{"observed/memory=262144", quality.DefaultMemory, 1 << 30},
		{"observed/memory=16384", 1 << 14, 1 << 30},
		{"observed/memory=262144/windows=1000", quality.DefaultMemory, 1000},
	} {
		b.Run(c.name, func(b *testing.B) {
			m, err := quality.NewMonitor(quality.WithReference(ref), quality.WithMemory(c.memory, time.Hour),
				quality.WithWindow(quality.CountWindow(c.window)), quality.WithDetectors(), quality.WithQueue(1<<16))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			run(b, m.Middleware()(model), m)
		})
	}
}

// BenchmarkLabel measures joining one label to its prediction, in
// batches of 256 through Label (the change detectors on).
func BenchmarkLabel(b *testing.B) {
	reqs, model := benchRequests(1 << 16)
	m, err := quality.NewMonitor(quality.WithReference(benchReference(b)), quality.WithMemory(1<<17, time.Hour), quality.WithQueue(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	p := m.Middleware()(model)
	ctx := context.Background()
	for i, r := range reqs {
		p.Predict(ctx, r)
		if i%1024 == 0 {
			m.Flush(ctx)
		}
	}
	labels := make([]quality.Label, len(reqs))
	for i, r := range reqs {
		labels[i] = quality.Label{ID: r.ID, Value: float64(i % 2)}
	}
	cpu := cpuTime()
	n := 0
	for i := 0; b.Loop(); i++ {
		lo := (i * 256) % len(labels)
		if _, err := m.Label(ctx, "fraud", labels[lo:lo+256]); err != nil {
			b.Fatal(err)
		}
		n += 256
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(n), "cpu-ns/label")
}

func benchReference(b *testing.B) *quality.Reference {
	rb, err := quality.NewReferenceBuilder("fraud", "1", quality.BinaryTask("score"))
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		s := r.Float64()
		rb.Add([]float64{s}, b2f(r.Float64() < s))
	}
	ref, err := rb.Reference()
	if err != nil {
		b.Fatal(err)
	}
	return ref
}

package drift_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

const (
	benchRows     = 64
	benchFeatures = 8
)

// benchModel is a model with the demo fraud model's shape (8 FP32 features
// in, a score out) that answers at once, so a benchmark measures what the
// drift middleware adds.
func benchModel() (serving.Predictor, []drift.Feature) {
	score, _ := serving.NewTensor("score", []int64{benchRows, 1}, make([]float32, benchRows))
	names := make([]string, benchFeatures)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	return servingtest.Static(score), drift.Columns("features", names...)
}

func benchRequest(r *rand.Rand, shift float64) *serving.Request {
	x := make([]float32, benchRows*benchFeatures)
	for i := range x {
		x[i] = float32(r.NormFloat64() + shift)
	}
	t, _ := serving.NewTensor("features", []int64{benchRows, benchFeatures}, x)
	return &serving.Request{Model: "fraud", Version: "1", Inputs: []serving.Tensor{t}}
}

func benchProfile(b *testing.B, features []drift.Feature) *drift.Profile {
	pb, err := drift.NewProfileBuilder("fraud", "1", features)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		for _, f := range features {
			pb.Add(f.Name, r.NormFloat64())
		}
	}
	p, err := pb.Profile()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkObserve measures a request of 64 rows × 8 features through the
// drift middleware, including the worker binning every value (the queue is
// flushed every 128 requests, so nothing is dropped and the worker's time
// is counted). ns/value is the wall time per observed value, cpu-ns/value
// the process's CPU time (both goroutines) per value; "baseline" is the same
// model without the middleware.
func BenchmarkObserve(b *testing.B) {
	model, features := benchModel()
	prof := benchProfile(b, features)
	reqs := make([]*serving.Request, 64)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range reqs {
		reqs[i] = benchRequest(r, 0.1)
	}
	run := func(b *testing.B, p serving.Predictor, m *drift.Monitor) {
		ctx := context.Background()
		b.ReportAllocs()
		cpu := cpuTime()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := p.Predict(ctx, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			if m != nil && i%128 == 127 {
				m.Flush(ctx)
			}
		}
		if m != nil {
			m.Flush(ctx)
		}
		b.StopTimer()
		values := float64(b.N * benchRows * benchFeatures)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/values, "ns/value")
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/values, "cpu-ns/value")
		if m != nil {
			if d := m.Stats().Dropped; d > 0 {
				b.Fatalf("%d requests dropped: the measurement would miss their cost", d)
			}
		}
	}
	b.Run("baseline", func(b *testing.B) { run(b, model, nil) })
	for _, exact := range []int{drift.DefaultExactLimit, 0} {
		b.Run(fmt.Sprintf("observed/exact-limit=%d", exact), func(b *testing.B) {
			m, err := drift.NewMonitor(drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(1<<30, 0)), drift.WithExactLimit(exact))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			run(b, m.Middleware()(model), m)
		})
	}
}

// BenchmarkBin measures binning alone: one numerical value into a state
// with the default 101 percentile edges.
func BenchmarkBin(b *testing.B) {
	_, features := benchModel()
	prof := benchProfile(b, features[:1])
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = r.NormFloat64()
	}
	var n int64
	cpu := cpuTime()
	for b.Loop() {
		n += drift.AddNumbers(&prof.Features[0], vals, 0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/value")
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(n), "cpu-ns/value")
}

// BenchmarkEvaluate measures evaluating one window of 8 numerical features
// against a 10000-row reference: 1000 rows (the KS test on histograms) and
// 20000 rows (distances; KS asymptotic).
func BenchmarkEvaluate(b *testing.B) {
	_, features := benchModel()
	prof := benchProfile(b, features)
	for _, rows := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			m, err := drift.NewMonitor(drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(1<<30, 0)))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			p := m.Middleware()(servingtest.Static())
			r := rand.New(rand.NewPCG(7, 8))
			for range rows / benchRows {
				p.Predict(context.Background(), benchRequest(r, 0.05))
			}
			snap, err := m.Snapshot(context.Background(), "fraud", "1")
			if err != nil {
				b.Fatal(err)
			}
			cpu := cpuTime()
			for b.Loop() {
				if _, err := drift.Evaluate(prof, snap); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/window")
		})
	}
}

// BenchmarkMemory reports the fixed state one feature holds per pane, with
// the default profile (101 percentile edges) and exact limit, whatever the
// traffic.
func BenchmarkMemory(b *testing.B) {
	_, features := benchModel()
	prof := benchProfile(b, features[:1])
	cb, _ := drift.NewProfileBuilder("m", "1", []drift.Feature{drift.CategoricalFeature("c", drift.Input("c"))})
	for i := range 1000 {
		cb.AddCategory("c", fmt.Sprint(i%200))
	}
	cat, _ := cb.Profile()
	for b.Loop() {
	}
	b.ReportMetric(float64(drift.StateBytes(&prof.Features[0], drift.DefaultExactLimit)), "B/numerical-feature")
	b.ReportMetric(float64(drift.StateBytes(&prof.Features[0], 0)), "B/numerical-feature-no-values")
	b.ReportMetric(float64(drift.StateBytes(&cat.Features[0], drift.DefaultExactLimit)), "B/categorical-feature-50")
}

// BenchmarkDataQuality measures binning with the data-quality checks on
// values a tenth of which are wrong: NaN, infinite, text that is no
// number, or outside the reference's range. The checks share the binning
// loop (a compare in the edge bins, a bit test on NaNs); BenchmarkBin has
// the same loop on clean values.
func BenchmarkDataQuality(b *testing.B) {
	_, features := benchModel()
	prof := benchProfile(b, features[:1])
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]float64, 4096)
	bad := []float64{math.NaN(), math.Inf(1), drift.Mismatch, 100, -100}
	for i := range vals {
		vals[i] = r.NormFloat64()
		if i%10 == 0 {
			vals[i] = bad[i/10%len(bad)]
		}
	}
	var n int64
	cpu := cpuTime()
	for b.Loop() {
		drift.AddNumbers(&prof.Features[0], vals, 0)
		n += int64(len(vals))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/value")
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(n), "cpu-ns/value")
}

package batch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// requireORT skips a benchmark when ONNX Runtime is missing, unless
// SERVEKIT_REQUIRE_ORT=1 (CI) makes that a failure.
func requireORT(b *testing.B) {
	b.Helper()
	if _, err := onnx.InitRuntime(""); err != nil {
		if os.Getenv("SERVEKIT_REQUIRE_ORT") == "1" {
			b.Fatalf("ONNX Runtime required (SERVEKIT_REQUIRE_ORT=1): %v", err)
		}
		b.Skipf("ONNX Runtime not available: %v", err)
	}
}

type benchModel struct {
	name  string
	build func() ([]byte, error)
	input string
	width int
}

var benchModels = []benchModel{
	{"fraud", onnxbuild.FraudMLP, "features", 8},
	{"wide", func() ([]byte, error) {
		return onnxbuild.RandomMLP("wide", []int{256, 1024, 1024, 10}, "softmax", 7)
	}, "input", 256},
}

func benchRequest(m benchModel, name string, rows int, rng *rand.Rand) *serving.Request {
	x := make([]float32, rows*m.width)
	for i := range x {
		x[i] = rng.Float32()
	}
	t, err := serving.NewTensor(name, []int64{int64(rows), int64(m.width)}, x)
	if err != nil {
		panic(err)
	}
	return &serving.Request{Model: m.name, Inputs: []serving.Tensor{t}}
}

// BenchmarkBatch compares, side by side in one run, each model at 1, 8 and
// 64 concurrent callers sending one-row requests: unbatched (the backend
// directly), batched (adaptive, the defaults), and ideal (one goroutine
// running pre-formed batches of as many rows as there are callers; its
// latency is that of a whole batch). ns/op is per request (row); rows/s,
// p50-µs and p99-µs are custom metrics.
func BenchmarkBatch(b *testing.B) {
	requireORT(b)
	for _, m := range benchModels {
		bytes, err := m.build()
		if err != nil {
			b.Fatal(err)
		}
		model, err := onnx.LoadBytes(m.name, bytes)
		if err != nil {
			b.Fatal(err)
		}
		md, _ := serving.MetadataOf(model)
		input := md.Inputs[0].Name
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/c%d/unbatched", m.name, conc), func(b *testing.B) {
				closedLoop(b, model, m, input, conc)
			})
			b.Run(fmt.Sprintf("%s/c%d/batched", m.name, conc), func(b *testing.B) {
				bt, err := batch.New(model)
				if err != nil {
					b.Fatal(err)
				}
				closedLoop(b, bt, m, input, conc)
				reportStats(b, bt)
				bt.Close()
			})
			for _, fl := range []int{2} { // the default is 1: compare
				b.Run(fmt.Sprintf("%s/c%d/batched-fl%d", m.name, conc, fl), func(b *testing.B) {
					bt, _ := batch.New(model, batch.WithMaxInFlight(fl))
					closedLoop(b, bt, m, input, conc)
					reportStats(b, bt)
					bt.Close()
				})
			}
			b.Run(fmt.Sprintf("%s/c%d/ideal", m.name, conc), func(b *testing.B) {
				ideal(b, model, m, input, conc)
			})
		}
		model.Close()
	}
}

// closedLoop runs conc goroutines that each send b.N/conc one-row requests
// back to back.
func closedLoop(b *testing.B, p serving.Predictor, m benchModel, input string, conc int) {
	per := max(b.N/conc, 1)
	reqs := make([]*serving.Request, conc)
	for i := range reqs {
		reqs[i] = benchRequest(m, input, 1, rand.New(rand.NewPCG(uint64(i), 1)))
	}
	lat := make([][]time.Duration, conc)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		lat[g] = make([]time.Duration, 0, per)
		wg.Go(func() {
			for range per {
				t0 := time.Now()
				if _, err := p.Predict(ctx, reqs[g]); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, slices.Concat(lat...), float64(per*conc)/elapsed.Seconds())
}

// ideal runs pre-formed batches of conc rows from one goroutine.
func ideal(b *testing.B, p serving.Predictor, m benchModel, input string, conc int) {
	req := benchRequest(m, input, conc, rand.New(rand.NewPCG(1, 1)))
	calls := max(b.N/conc, 1)
	lat := make([]time.Duration, 0, calls)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for range calls {
		t0 := time.Now()
		if _, err := p.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, lat, float64(calls*conc)/elapsed.Seconds())
}

func report(b *testing.B, lat []time.Duration, rowsPerSec float64) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(rowsPerSec, "rows/s")
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// reportStats adds the batcher's view: mean rows per batch (runs in the
// caller's goroutine count as batches of one) and mean run time per batch.
func reportStats(b *testing.B, bt *batch.Batcher) {
	s := bt.Stats()
	b.ReportMetric(s.MeanRows(), "rows/batch")
	if s.Batches > 0 {
		b.ReportMetric(float64(s.RunTime.Nanoseconds())/float64(s.Batches)/1e3, "run-µs")
	}
}

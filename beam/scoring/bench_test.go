package scoring

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/beam/internal/beamtest"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
)

// BenchmarkBatchRows scores 4096 fraud rows per op through the DoFn (Row
// conversion, batching, splitting into Results) at several batch sizes,
// beside ONNX Runtime itself on pre-formed batches of the same size: the
// ratio of their CPU time per row is what scoring costs on top of the
// model. CPU time (cpu-ns/row, from getrusage) rather than wall time,
// because these machines are shared and a benchmark's wall time says more
// about its neighbours than about it. Run it with -bench BatchRows
// -benchtime 40x; its figures are in the module's README.
func BenchmarkBatchRows(b *testing.B) {
	orttest.Require(b)
	path := beamtest.FraudModel(b)
	const n = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]Row, n)
	flat := make([]float32, 0, 8*n)
	for i := range rows {
		x := make([]float64, 8)
		for j := range x {
			x[j] = float64(float32(rng.NormFloat64()))
			flat = append(flat, float32(x[j]))
		}
		rows[i] = Row{Key: fmt.Sprint(i), Inputs: map[string][]float64{"features": x}}
	}
	ctx := context.Background()
	for _, size := range []int{1, 16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("rows=%d/scoring", size), func(b *testing.B) {
			fn := &scoreFn{Model: Model{Path: path}, MaxBatchRows: size}
			if err := fn.Setup(ctx); err != nil {
				b.Fatal(err)
			}
			defer fn.Teardown()
			emitted := 0
			emit := func(beam.EventTime, Result) { emitted++ }
			fail := func(_ beam.EventTime, f Failure) { b.Fatal(f.Reason) }
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				for _, r := range rows {
					if err := fn.ProcessElement(ctx, 0, r, emit, fail); err != nil {
						b.Fatal(err)
					}
				}
				if err := fn.FinishBundle(ctx, emit, fail); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(emitted), "cpu-ns/row")
		})
		b.Run(fmt.Sprintf("rows=%d/ort", size), func(b *testing.B) {
			m, err := onnx.Load(path)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			reqs := make([]*serving.Request, 0, n/size)
			for lo := 0; lo < n; lo += size {
				t, err := serving.NewTensor("features", []int64{int64(size), 8}, flat[8*lo:8*(lo+size)])
				if err != nil {
					b.Fatal(err)
				}
				reqs = append(reqs, &serving.Request{Inputs: []serving.Tensor{t}})
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				for _, req := range reqs {
					if _, err := m.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(n*b.N), "cpu-ns/row")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

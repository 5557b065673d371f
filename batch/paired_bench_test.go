package batch_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/orttest"
)

// BenchmarkLonePaired shows what a lone caller pays for batching on each
// model, by the clock: every iteration calls the model unbatched and
// through a Batcher back to back (unbatched first in even iterations,
// batched first in odd ones) and times each call. It reports
//
//	over-ns/call  the median of the per-iteration differences, batched
//	              minus unbatched: what batching adds to a lone request
//	mean-over-ns  their mean: what throughput sees, with the one run in
//	              fastSample that takes the locked path to be timed
//	              (noisier: an interrupt in either call moves it)
//	over-pct      the median of the differences as a percentage of that
//	              iteration's unbatched call
//	base-ns/call  the median unbatched call, for scale
//
// (ns/op is the pair). BenchmarkBatch's c1 cells run a second or more
// apart, and on a shared machine a model's run time moves between them by
// more than the difference sought; the two calls of a pair are a few µs
// apart, so what moves slower than that cancels inside the pair, and the
// median ignores an interrupt that lands in one call of it. ctx=cancel
// runs under a ctx that can end, as an HTTP or gRPC request's, and
// ctx=cancel-sdk also records the batcher's metrics with the OTel SDK, as
// a server does, and reports collect-ns/call: the time one collection
// (a Prometheus scrape) then takes, over the runs it records, as the lone
// runs' metrics are recorded at collection, not as they run. Run it
// pinned to one CPU, several rounds:
//
//	taskset -c 1 batch.test -test.bench LonePaired -test.cpu 1 -test.count 3
func BenchmarkLonePaired(b *testing.B) {
	orttest.Require(b)
	for _, m := range benchModels {
		model, input := loadBench(b, m)
		req := benchRequest(m, input, 1, rand.New(rand.NewPCG(1, 1)))
		for _, c := range []string{"background", "cancel", "cancel-sdk"} {
			b.Run(m.name+"/ctx="+c, func(b *testing.B) {
				ctx := context.Background()
				if c != "background" {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				var opts []batch.Option
				var reader *sdkmetric.ManualReader
				if c == "cancel-sdk" { // metrics recorded by the OTel SDK, as a server's are
					reader = sdkmetric.NewManualReader()
					mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
					defer mp.Shutdown(context.Background())
					opts = append(opts, batch.WithMeterProvider(mp))
				}
				bt, err := batch.New(borrowed{model}, opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer bt.Close()
				lent := borrowed{model} // as the batcher calls it
				unbatched := func() {
					if _, err := lent.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
				batched := func() {
					if _, err := bt.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
				for until := time.Now().Add(warmUp); time.Now().Before(until); {
					unbatched()
					batched()
				}
				var rm metricdata.ResourceMetrics
				if reader != nil { // the warm-up's runs are recorded here, untimed
					if err := reader.Collect(context.Background(), &rm); err != nil {
						b.Fatal(err)
					}
				}
				var base, over, pct []float64
				for i := 0; b.Loop(); i++ {
					var u, t time.Duration
					t0 := time.Now()
					if i&1 == 0 {
						unbatched()
						t1 := time.Now()
						batched()
						u, t = t1.Sub(t0), time.Since(t1)
					} else {
						batched()
						t1 := time.Now()
						unbatched()
						t, u = t1.Sub(t0), time.Since(t1)
					}
					base = append(base, float64(u))
					over = append(over, float64(t-u))
					if u > 0 {
						pct = append(pct, 100*float64(t-u)/float64(u))
					}
				}
				if reader != nil {
					// The lone runs' records, made at collection
					// (Observability in the package doc): what a scrape
					// costs for each run since the last one.
					t0 := time.Now()
					if err := reader.Collect(context.Background(), &rm); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(time.Since(t0))/float64(len(base)), "collect-ns/call")
				}
				b.ReportMetric(median(over), "over-ns/call")
				b.ReportMetric(mean(over), "mean-over-ns")
				b.ReportMetric(median(pct), "over-pct")
				b.ReportMetric(median(base), "base-ns/call")
			})
		}
		model.Close()
	}
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(max(len(xs), 1))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

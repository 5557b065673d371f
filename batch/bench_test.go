package batch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

type benchModel struct {
	name  string
	build func() ([]byte, error)
	input string
	row   []int64 // input dims after the batch dim
}

func (m benchModel) width() int {
	n := 1
	for _, d := range m.row {
		n *= int(d)
	}
	return n
}

// benchModels are the three shapes of model the batcher must not lose on:
// the demo fraud MLP (about 4 µs a run, nearly all of it fixed cost), a
// wide MLP (about 140 µs a row alone, memory-bound at one row and
// compute-bound in a batch) and a small conv net on 3×32×32 images (about
// 1.6 MFLOP an image, a cost that grows with the rows).
var benchModels = []benchModel{
	{"fraud", onnxbuild.FraudMLP, "features", []int64{8}},
	{"wide", onnxbuild.WideMLP, "input", []int64{256}},
	{"conv", onnxbuild.SmallConvNet, "image", []int64{3, 32, 32}},
}

func benchRequest(m benchModel, name string, rows int, rng *rand.Rand) *serving.Request {
	x := make([]float32, rows*m.width())
	for i := range x {
		x[i] = rng.Float32()
	}
	t, err := serving.NewTensor(name, append([]int64{int64(rows)}, m.row...), x)
	if err != nil {
		panic(err)
	}
	return &serving.Request{Model: m.name, Inputs: []serving.Tensor{t}}
}

// BenchmarkBatch compares, side by side in one run, each model at 1, 8, 64
// and 256 concurrent callers sending one-row requests (closed loops: each
// caller sends its next request when the last is answered):
//
//   - unbatched: the backend directly. With 8 or more callers its runs go
//     on in parallel, one per core (the backend's default is one intra-op
//     thread per run, onnx.DefaultIntraOpThreads).
//   - batched: the defaults (adaptive, one batch in flight).
//
// Compare the two with bench/batchratio (see its doc; bench/README.md): the
// goal is batched ≥ unbatched in every cell. ns/op is per request (row).
// The two sides of a cell run one after the other, unbatched always
// first, a second or more apart: on a shared machine the ratio then
// carries the order and whatever the load did meanwhile.
// BenchmarkBatchInterleaved is the comparison to trust; this one gives
// each side's latency over a longer stretch and the batcher's own view.
// Custom metrics: rows/s, p50-µs and p99-µs (per request), and for batched
// cells rows/batch (runs in the caller's goroutine count as batches of
// one), run-µs (mean wall time of one batch: join, run, split and
// hand-out) and alone-% (the share of requests the cost model sent to run
// alone in their callers' goroutines).
func BenchmarkBatch(b *testing.B) {
	orttest.Require(b)
	for _, m := range benchModels {
		model, input := loadBench(b, m)
		for _, conc := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("%s/c%d/unbatched", m.name, conc), func(b *testing.B) {
				closedLoop(b, borrowed{model}, m, input, conc)
			})
			b.Run(fmt.Sprintf("%s/c%d/batched", m.name, conc), func(b *testing.B) {
				batchedLoop(b, model, m, input, conc)
			})
		}
		model.Close()
	}
}

// BenchmarkBatchVariants measures what the defaults were chosen against, at
// 64 callers: batched-fl2 with two batches in flight; ideal, one goroutine
// running pre-formed batches of 64 rows back to back (the model's cost per
// row at that size with no queueing, joining, splitting or wake-ups at
// all; its latency is that of one whole batch run); and for the wide MLP,
// batched-iop2 and ideal-iop2 with two intra-op threads
// (onnx.WithIntraOpThreads(2)), so that one run may use both cores as the
// unbatched cells do.
func BenchmarkBatchVariants(b *testing.B) {
	orttest.Require(b)
	const conc = 64
	for _, m := range benchModels {
		model, input := loadBench(b, m)
		b.Run(fmt.Sprintf("%s/c%d/batched-fl2", m.name, conc), func(b *testing.B) {
			batchedLoop(b, model, m, input, conc, batch.WithMaxInFlight(2))
		})
		b.Run(fmt.Sprintf("%s/c%d/ideal", m.name, conc), func(b *testing.B) {
			ideal(b, model, m, input, conc)
		})
		if m.name == "wide" {
			model2, _ := loadBench(b, m, onnx.WithIntraOpThreads(2))
			b.Run(fmt.Sprintf("%s/c%d/batched-iop2", m.name, conc), func(b *testing.B) {
				batchedLoop(b, model2, m, input, conc)
			})
			b.Run(fmt.Sprintf("%s/c%d/ideal-iop2", m.name, conc), func(b *testing.B) {
				ideal(b, model2, m, input, conc)
			})
			model2.Close()
		}
		model.Close()
	}
}

func loadBench(b *testing.B, m benchModel, opts ...onnx.Option) (*onnx.Model, string) {
	bytes, err := m.build()
	if err != nil {
		b.Fatal(err)
	}
	model, err := onnx.LoadBytes(m.name, bytes, opts...)
	if err != nil {
		b.Fatal(err)
	}
	md, _ := serving.MetadataOf(model)
	return model, md.Inputs[0].Name
}

func batchedLoop(b *testing.B, p serving.Predictor, m benchModel, input string, conc int, opts ...batch.Option) {
	bt, err := batch.New(borrowed{p}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	closedLoop(b, bt, m, input, conc)
	reportStats(b, bt)
	bt.Close()
}

// borrowed lends a model to a Batcher without giving it away: a Batcher
// closes the model it wraps (serving.Middleware's ownership rule), and the
// benchmarks run many batchers, one after another, over one loaded model.
// The unbatched side of every comparison calls the model through it too:
// after a model's run each function still to return through is cold in
// the caches, and this one pass-through costs 10–20 ns a call on the fraud
// model's 2.6 µs, which is the benchmark's and not the batcher's.
type borrowed struct{ serving.Predictor }

func (p borrowed) Metadata() serving.Metadata {
	md, _ := serving.MetadataOf(p.Predictor)
	return md
}

func (borrowed) Close() error { return nil }

// warmUp is how long each cell runs before it is measured: long enough
// for the backend's caches and for adaptive mode's measures to settle (it
// decides over windows of 20 ms), as they have on a server that has run
// for more than a second. SERVEKIT_BENCH_WARMUP overrides it (a
// time.Duration): 0 under callgrind, where a warm-up bounded by the clock
// would run a different number of requests each time and blur the
// instruction counts of a fixed -test.benchtime Nx.
var warmUp = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SERVEKIT_BENCH_WARMUP")); err == nil {
		return d
	}
	return 500 * time.Millisecond
}()

// closedLoop runs conc goroutines that each send b.N/conc one-row requests
// back to back, after warmUp of the same.
func closedLoop(b *testing.B, p serving.Predictor, m benchModel, input string, conc int) {
	per := max(b.N/conc, 1)
	reqs := make([]*serving.Request, conc)
	for i := range reqs {
		reqs[i] = benchRequest(m, input, 1, rand.New(rand.NewPCG(uint64(i), 1)))
	}
	lat := make([][]time.Duration, conc)
	ctx := context.Background()
	var warm sync.WaitGroup
	until := time.Now().Add(warmUp)
	for g := range conc {
		warm.Go(func() {
			for time.Now().Before(until) {
				if _, err := p.Predict(ctx, reqs[g]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	warm.Wait()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		n := 0
		wg.Go(func() {
			lat[g] = timedCalls(b, p, reqs[g], func() bool { n++; return n <= per }, make([]time.Duration, 0, per))
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	report(b, slices.Concat(lat...), float64(per*conc)/elapsed.Seconds())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(per*conc)/1e3, "cpu-µs/row")
}

// timedCalls is one closed-loop caller: it sends req to p while more
// reports true, appending each answer's latency to lat.
func timedCalls(b *testing.B, p serving.Predictor, req *serving.Request, more func() bool, lat []time.Duration) []time.Duration {
	ctx := context.Background()
	for more() {
		t0 := time.Now()
		if _, err := p.Predict(ctx, req); err != nil {
			b.Error(err)
			break
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

// cpuTime is the CPU time the process has used (all threads, ONNX
// Runtime's included). On a machine shared with other work, CPU per row
// is a steadier measure of what a request costs than rows per second,
// which also depend on how much of the machine the benchmark got.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
// caller's goroutine count as batches of one) and mean run time per timed
// batch.
func reportStats(b *testing.B, bt *batch.Batcher) {
	s := bt.Stats()
	b.ReportMetric(s.MeanRows(), "rows/batch")
	if timed := s.Batches - s.Untimed; timed > 0 { // lone runs on the fast path are not timed
		b.ReportMetric(float64(s.RunTime.Nanoseconds())/float64(timed)/1e3, "run-µs")
	}
	if s.Requests > 0 {
		b.ReportMetric(100*float64(s.Alone)/float64(s.Requests), "alone-%")
	}
}

// BenchmarkLoneOverhead measures what the batcher adds to a lone request
// (the direct path), on an in-memory model so that the difference is not
// lost in a model run's noise: compare batched with unbatched. The -cancel
// pair runs under a ctx that can end, as an HTTP or gRPC request's.
func BenchmarkLoneOverhead(b *testing.B) {
	model := servingtest.Linear(8)
	req := servingtest.Rows(8, 1, 0)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		suffix string
		ctx    context.Context
	}{{"", context.Background()}, {"-cancel", cctx}} {
		ctx := c.ctx
		b.Run("unbatched"+c.suffix, func(b *testing.B) {
			for b.Loop() {
				if _, err := (borrowed{model}).Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("batched"+c.suffix, func(b *testing.B) {
			bt, err := batch.New(borrowed{model})
			if err != nil {
				b.Fatal(err)
			}
			defer bt.Close()
			for b.Loop() {
				if _, err := bt.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBatchInterleaved compares the same cells as BenchmarkBatch, but
// so that neither the order nor the machine's load can favour a side:
// within one benchmark run, the two sides take turns in slices of
// sliceLen (each slice a closed loop of the cell's callers, started afresh
// and run until the slice ends), in the order AB BA AB BA …, so that each
// side goes first as often as the other and a load that rises or falls
// steadily over the run weighs on both alike. Each pair of slices gives
// a ratio of the two sides' rows/s, the run reports their median (a burst
// of other work on the machine that lands in one slice moves one pair's
// ratio, not the median), and each side's rows, time and CPU summed over
// its slices. Two comparisons per cell:
//
//	MODEL/cN/batched  a: unbatched (the backend directly), b: batched (the
//	                  defaults), one Batcher over the whole run, so its
//	                  adaptive mode carries over from slice to slice as on
//	                  a server whose load comes and goes
//	MODEL/cN/control  a and b both unbatched: the A/A control. Its ratio
//	                  is 1 but for noise: a batched ratio inside the
//	                  control's spread over the same rounds is no loss and
//	                  no win.
//
// Metrics: b/a (b's rows/s over a's, the median over the pairs), a-cpu/b-cpu (a's CPU time per row
// over b's: above 1, b costs less per row), a-rows/s and b-rows/s, a-p99-µs
// and b-p99-µs, and for batched, the batcher's rows/batch, run-µs and
// alone-% (over the whole run, warm-up included). ns/op is per pair of
// slices; b.N counts pairs. Before the timed pairs, each side has warmUp
// in slices of its own (the same alternation). Summarise several rounds
// with bench/batchratio, which puts each cell's batched ratio beside its
// control's:
//
//	go test -run '^$' -bench 'BatchInterleaved' -benchtime 2s -count 3 ./batch | go run ./bench/batchratio
//
// (2s: about ten pairs a run.) SERVEKIT_BENCH_SLICE overrides sliceLen.
func BenchmarkBatchInterleaved(b *testing.B) {
	orttest.Require(b)
	for _, m := range benchModels {
		model, input := loadBench(b, m)
		for _, conc := range []int{1, 8, 64, 256} {
			b.Run(fmt.Sprintf("%s/c%d/batched", m.name, conc), func(b *testing.B) {
				bt, err := batch.New(borrowed{model})
				if err != nil {
					b.Fatal(err)
				}
				interleave(b, borrowed{model}, bt, m, input, conc)
				reportStats(b, bt)
				bt.Close()
			})
			b.Run(fmt.Sprintf("%s/c%d/control", m.name, conc), func(b *testing.B) {
				interleave(b, borrowed{model}, borrowed{model}, m, input, conc)
			})
		}
		model.Close()
	}
}

// sliceLen is the length of one side's turn (SERVEKIT_BENCH_SLICE, a
// time.Duration, overrides it). The batcher decides over windows of
// 20 ms; a slice five times longer leaves it time to settle after the
// other side's turn, whose gap then falls inside one of its windows, as
// a pause in a server's load would. Shorter slices cancel more of the
// machine's changing load; longer ones measure more of the batcher's
// settling.
var sliceLen = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SERVEKIT_BENCH_SLICE")); err == nil && d > 0 {
		return d
	}
	return 100 * time.Millisecond
}()

// turns sums one side's slices.
type turns struct {
	rows    int64
	d, cpu  time.Duration
	latency []time.Duration
}

func (t turns) rate() float64 { return float64(t.rows) / t.d.Seconds() }

func (t *turns) add(u turns) {
	t.rows += u.rows
	t.d += u.d
	t.cpu += u.cpu
	t.latency = append(t.latency, u.latency...)
}

// interleave runs a and b in alternate slices (see
// BenchmarkBatchInterleaved), b.N pairs after warmUp.
func interleave(b *testing.B, a, p serving.Predictor, m benchModel, input string, conc int) {
	reqs := make([]*serving.Request, conc)
	for i := range reqs {
		reqs[i] = benchRequest(m, input, 1, rand.New(rand.NewPCG(uint64(i), 1)))
	}
	sides := [2]serving.Predictor{a, p}
	var warm [2]turns
	for i := range 2 * int(warmUp/sliceLen) {
		slice(b, sides[i&1], reqs, &warm[i&1])
	}
	var got [2]turns
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		first := i & 1 // AB, BA, AB, …
		var pair [2]turns
		slice(b, sides[first], reqs, &pair[first])
		slice(b, sides[1-first], reqs, &pair[1-first])
		if pair[0].rows > 0 && pair[1].rows > 0 {
			ratios = append(ratios, pair[1].rate()/pair[0].rate())
		}
		for s := range got {
			got[s].add(pair[s])
		}
	}
	b.StopTimer()
	if got[0].rows == 0 || got[1].rows == 0 {
		return
	}
	b.ReportMetric(median(ratios), "b/a")
	b.ReportMetric(float64(got[0].cpu)/float64(got[0].rows)/(float64(got[1].cpu)/float64(got[1].rows)), "a-cpu/b-cpu")
	b.ReportMetric(got[0].rate(), "a-rows/s")
	b.ReportMetric(got[1].rate(), "b-rows/s")
	for i, name := range []string{"a-p99-µs", "b-p99-µs"} {
		lat := got[i].latency
		slices.Sort(lat)
		b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Nanoseconds())/1e3, name)
	}
}

// slice runs one slice of p: conc callers in closed loops until sliceLen
// has passed, each finishing the request it has begun; the slice lasts
// until the last is answered.
func slice(b *testing.B, p serving.Predictor, reqs []*serving.Request, t *turns) {
	var stop atomic.Bool
	lat := make([][]time.Duration, len(reqs))
	cpu0 := cpuTime()
	start := time.Now()
	timer := time.AfterFunc(sliceLen, func() { stop.Store(true) })
	var wg sync.WaitGroup
	for g := range reqs {
		wg.Go(func() {
			lat[g] = timedCalls(b, p, reqs[g], func() bool { return !stop.Load() }, nil)
		})
	}
	wg.Wait()
	t.d += time.Since(start)
	t.cpu += cpuTime() - cpu0
	timer.Stop()
	for _, l := range lat {
		t.rows += int64(len(l))
		t.latency = append(t.latency, l...)
	}
}

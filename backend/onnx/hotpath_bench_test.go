package onnx_test

import (
	"context"
	"fmt"
	"math/bits"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// hotModel is a model of BenchmarkOverhead: one FP32 input [N, in] and
// one FP32 output [N, out].
type hotModel struct {
	name, input, output string
	in, out             int
	build               func() ([]byte, error)
}

var hotModels = []hotModel{
	{"fraud", "features", "score", 8, 1, onnxbuild.FraudMLP},
	{"wide", "input", "output", 256, 10, func() ([]byte, error) {
		return onnxbuild.RandomMLP("wide", []int{256, 1024, 1024, 10}, "softmax", 7)
	}},
}

// BenchmarkOverhead measures what Predict adds to ONNX Runtime, side by
// side in one run: impl=raw is onnxruntime_go's DynamicAdvancedSession.Run
// on tensors made once (the floor), impl=predict is Model.Predict on the
// same rows with a background ctx, impl=predict-ctx with a cancellable one
// (which arms ONNX Runtime's terminate flag, as every HTTP request does).
// Both sessions have Load's default options. Compare with
//
//	benchstat -col /impl out.txt
//
// On a shared machine the rounds of impl=raw and impl=predict drift apart
// by more than their difference; impl=paired and impl=paired-ctx time
// both in every iteration and report the difference itself (see paired).
//
// The fraud model (8 → 1) is nearly all overhead; the wide MLP
// (256 → 1024 → 1024 → 10) shows the overhead against real compute and,
// at batch 32, takes the zero-copy path (its input is over the frames'
// 4 KiB).
func BenchmarkOverhead(b *testing.B) {
	requireORT(b)
	for _, hm := range hotModels {
		// Each model loads inside its own sub-benchmark, so a -bench
		// pattern that leaves it out does not pay for building it.
		b.Run("model="+hm.name, func(b *testing.B) { overhead(b, hm) })
	}
}

func overhead(b *testing.B, hm hotModel) {
	onnxBytes, err := hm.build()
	if err != nil {
		b.Fatal(err)
	}
	m, err := onnx.LoadBytes(hm.name, onnxBytes)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	so.SetIntraOpNumThreads(onnx.DefaultIntraOpThreads)
	so.SetInterOpNumThreads(1)
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(onnxBytes, []string{hm.input}, []string{hm.output}, so)
	so.Destroy()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	for _, n := range batches {
		x := make([]float32, n*hm.in)
		for i := range x {
			x[i] = float32(i%11)/5 - 1
		}
		t, err := serving.NewTensor(hm.input, []int64{int64(n), int64(hm.in)}, x)
		if err != nil {
			b.Fatal(err)
		}
		req := &serving.Request{Inputs: []serving.Tensor{t}}
		prefix := fmt.Sprintf("batch=%d", n)
		b.Run(prefix+"/impl=raw", func(b *testing.B) {
			in, err := ort.NewTensor(ort.NewShape(int64(n), int64(hm.in)), x)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Destroy()
			out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(hm.out)))
			if err != nil {
				b.Fatal(err)
			}
			defer out.Destroy()
			ins, outs := []ort.Value{in}, []ort.Value{out}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Run(ins, outs); err != nil {
					b.Fatal(err)
				}
			}
		})
		predict := func(ctx context.Context) func(*testing.B) {
			return func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.Run(prefix+"/impl=predict", predict(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		b.Run(prefix+"/impl=predict-ctx", predict(ctx))
		b.Run(prefix+"/impl=paired", func(b *testing.B) { paired(b, s, hm, x, m, context.Background(), req) })
		b.Run(prefix+"/impl=paired-ctx", func(b *testing.B) { paired(b, s, hm, x, m, ctx, req) })
		cancel()
	}
}

// paired is impl=paired: every iteration runs raw ORT (as impl=raw) and
// Predict (as impl=predict) back to back, raw first in even iterations
// and Predict first in odd ones, and times each call. It reports
//
//	over-ns/call       the median of the per-iteration differences,
//	                   Predict minus raw: what Predict adds to a call
//	over-mean-ns/call  their mean, which also carries the garbage
//	                   collector's share of Predict's allocations and
//	                   every disturbance that hit one call of a pair
//	over-pct           the median of the per-iteration differences as
//	                   a percentage of that iteration's raw call
//	raw-ns/call        the median raw call, for scale
//
// (ns/op is the pair plus three clock reads). Separate sub-benchmarks
// take their rounds a second or more apart, and on a shared machine raw
// ORT alone moves by 0.4 µs between rounds, more than the difference
// sought; the two calls of a pair are 3 µs apart, so whatever moves
// slower than that (frequency, other tenants' load, cache state left by
// them) cancels inside the pair, and alternating the order cancels what
// being first or second does. An interrupt or a preemption lands in one
// call of a pair: the median of the differences ignores it, the mean does
// not. What slows both calls alike (another thread on the same core, a
// lower clock) scales the difference with them: over-pct cancels that,
// and over-pct times a quiet round's raw-ns/call is the difference at
// that round's speed. Run pinned to one CPU, several rounds:
//
//	taskset -c 1 onnx.test -test.bench 'Overhead/model=fraud/.*/impl=paired' -test.cpu 1 -test.count 5
func paired(b *testing.B, s *ort.DynamicAdvancedSession, hm hotModel, x []float32, m *onnx.Model, ctx context.Context, req *serving.Request) {
	n := int64(len(x) / hm.in)
	in, err := ort.NewTensor(ort.NewShape(n, int64(hm.in)), x)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(n, int64(hm.out)))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Destroy()
	ins, outs := []ort.Value{in}, []ort.Value{out}
	raw := func() {
		if err := s.Run(ins, outs); err != nil {
			b.Fatal(err)
		}
	}
	predict := func() {
		if _, err := m.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	rawNs, over, pct := new(hist), new(hist), new(hist)
	var sum time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var r, p time.Duration
		t0 := time.Now()
		if i&1 == 0 {
			raw()
			t1 := time.Now()
			predict()
			r, p = t1.Sub(t0), time.Since(t1)
		} else {
			predict()
			t1 := time.Now()
			raw()
			p, r = t1.Sub(t0), time.Since(t1)
		}
		rawNs.add(r)
		over.add(p - r)
		sum += p - r
		if r > 0 {
			pct.add((p - r) * 100_000 / r) // in thousandths of a percent
		}
	}
	b.ReportMetric(over.median(), "over-ns/call")
	b.ReportMetric(float64(sum)/float64(b.N), "over-mean-ns/call")
	b.ReportMetric(pct.median()/1000, "over-pct")
	b.ReportMetric(rawNs.median(), "raw-ns/call")
}

// hist counts durations in log-linear bins: 1 ns wide below 64 ns, then
// 64 bins an octave (1.6 % of the value; 4 ns at 300 ns, 1 µs at 70 µs),
// negative values apart. It is made before the loop and never grows, so
// the loop allocates only what the calls do.
type hist struct {
	neg, pos [64 * 58]uint32
	n        int
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		h.neg[logBin(uint64(-d))]++
	} else {
		h.pos[logBin(uint64(d))]++
	}
	h.n++
}

func logBin(v uint64) int {
	if v < 64 {
		return int(v)
	}
	o := bits.Len64(v) - 7 // v>>o is in [64, 128)
	return 64*o + int(v>>o)
}

// binMid is the middle of logBin's bin i.
func binMid(i int) float64 {
	if i < 64 {
		return float64(i)
	}
	o := i/64 - 1
	return float64(uint64(i-64*o)<<o) + float64(uint64(1)<<o-1)/2
}

// median is the middle value in ns (of the bin holding it).
func (h *hist) median() float64 {
	seen := 0
	for i := len(h.neg) - 1; i >= 0; i-- {
		if seen += int(h.neg[i]); 2*seen >= h.n && h.n > 0 {
			return -binMid(i)
		}
	}
	for i, c := range h.pos {
		if seen += int(c); 2*seen >= h.n {
			return binMid(i)
		}
	}
	return 0
}

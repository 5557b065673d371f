package rollout

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistBuckets(t *testing.T) {
	// Every value falls in a bucket whose bounds hold it, and bucket
	// indexes grow with the value.
	prev := -1
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 20, 1<<20 + 1, 1 << 40, 1<<41 - 1} {
		i := histBucket(time.Duration(v))
		lo, hi := histBounds(i)
		if v < lo || v >= hi {
			t.Errorf("%d in bucket %d [%d,%d)", v, i, lo, hi)
		}
		if i < prev {
			t.Errorf("%d: bucket %d after %d", v, i, prev)
		}
		prev = i
		if hi-lo > 1 && float64(hi-lo)/float64(lo) > 1.0/16 {
			t.Errorf("bucket %d [%d,%d) wider than 1/16", i, lo, hi)
		}
	}
	if i := histBucket(time.Duration(1) << 50); i != histBuckets-1 {
		t.Errorf("2^50 ns in bucket %d, want the last (%d)", i, histBuckets-1)
	}
	if i := histBucket(-5); i != 0 {
		t.Errorf("negative in bucket %d, want 0", i)
	}
}

func TestHistQuantile(t *testing.T) {
	var h latencyHist
	if h.quantile(0.5) != 0 {
		t.Error("empty histogram: quantile not 0")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 10_000)
	for i := range vals {
		// Log-uniform from 1 µs to 100 ms.
		vals[i] = time.Duration(1000 * math.Pow(1e5, rng.Float64()))
		h.add(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		want := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if rel := float64(got-want) / float64(want); rel > 0.032 || rel < -0.032 {
			t.Errorf("q%v: %v, want %v ± 3.2%% (off %.1f%%)", q, got, want, rel*100)
		}
	}
	// Small values are exact.
	var s latencyHist
	for _, d := range []time.Duration{3, 5, 7} {
		s.add(d)
	}
	if s.quantile(0.5) != 5 || s.quantile(1) != 7 {
		t.Errorf("small: p50 %v p100 %v, want 5ns 7ns", s.quantile(0.5), s.quantile(1))
	}
}

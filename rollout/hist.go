package rollout

import (
	"math/bits"
	"time"
)

// latencyHist counts durations in log-linear buckets, as HDR histograms do:
// values below 2^subBits ns exactly, then subBuckets buckets per power of
// two. A bucket spans 1/16 of its lower bound, so a quantile read at a
// bucket's midpoint is within ±3.2 % of the true value. Durations up to
// 2^maxOctave ns (~18 minutes) have their own buckets; longer ones share the
// last. Its size is fixed (about 5 KiB), whatever the traffic.
type latencyHist struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	subBits     = 4
	subBuckets  = 1 << subBits
	maxOctave   = 40
	histBuckets = (maxOctave-subBits+1)*subBuckets + subBuckets
)

func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < subBuckets {
		return int(v)
	}
	oct := bits.Len64(v) - 1 // ≥ subBits
	if oct > maxOctave {
		return histBuckets - 1
	}
	sub := int(v>>(oct-subBits)) & (subBuckets - 1)
	return (oct-subBits+1)*subBuckets + sub
}

// histBounds is the range [lo, hi) of bucket i in nanoseconds.
func histBounds(i int) (lo, hi uint64) {
	if i < subBuckets {
		return uint64(i), uint64(i) + 1
	}
	oct := i/subBuckets + subBits - 1
	sub := uint64(i % subBuckets)
	width := uint64(1) << (oct - subBits)
	lo = (subBuckets + sub) * width
	return lo, lo + width
}

func (h *latencyHist) add(d time.Duration) {
	h.counts[histBucket(d)]++
	h.n++
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1) as the midpoint of the bucket
// that holds the ⌈q·n⌉-th smallest value, or 0 for an empty histogram.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			if hi-lo == 1 {
				return time.Duration(lo)
			}
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0 // unreachable: seen reaches n
}

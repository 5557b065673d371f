package rollout

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// Stats are one version's numbers: what Status shows, what guards judge and
// what the metrics export, all read from the same counters.
type Stats struct {
	// InFlight is the number of requests inside the version now.
	InFlight int64
	// Requests counts answered requests, whatever the outcome; Failures
	// those answered with an error that counts against the version
	// (IsFailure); Errors every error by code (nil when none). In Status
	// they count from when the version was added (a hot replace keeps
	// them); in a guard's Snapshot, from when the plan's step began.
	Requests int64
	Failures int64
	Errors   map[serving.Code]int64
	// WindowRequests and WindowFailures count the same over the sliding
	// window (WithStatsWindow), as do the latency percentiles P50 and P99
	// (0 when the window holds no request).
	WindowRequests int64
	WindowFailures int64
	P50, P99       time.Duration
}

// ErrorRate is Failures / Requests, or 0 without requests.
func (s Stats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Failures) / float64(s.Requests)
}

// IsFailure reports whether an answer with code c counts against the
// version that gave it: the server-side codes, those HTTP maps to 5xx
// (internal, unavailable, deadline_exceeded, unimplemented), as Flagger
// and Argo Rollouts judge a canary by its non-5xx rate. A client's bad
// input, an unknown output, a caller that gave up or load shed with 429
// say nothing about the version's quality.
func IsFailure(c serving.Code) bool {
	switch c {
	case serving.Internal, serving.Unavailable, serving.DeadlineExceeded, serving.Unimplemented:
		return true
	}
	return false
}

// numCodes is how many codes serving defines; an unknown code (none today)
// is counted as internal.
const numCodes = int(serving.Internal) + 1

// vstats are one version's live counters. Everything is an atomic, so the
// request path takes no lock (the window takes one only to rotate a slot,
// once per slot duration).
type vstats struct {
	inflight  atomic.Int64
	codes     [numCodes]atomic.Int64 // answered, by code
	fallbacks atomic.Int64           // routed here but not ready, sent elsewhere
	win       window
}

func (s *vstats) record(at time.Time, d time.Duration, c serving.Code) {
	if int(c) >= numCodes {
		c = serving.Internal
	}
	s.codes[c].Add(1)
	s.win.record(at, d, IsFailure(c))
}

// counts copies the counters by code.
func (s *vstats) counts() (n [numCodes]int64) {
	for i := range n {
		n[i] = s.codes[i].Load()
	}
	return n
}

// read returns the stats at now, with counts since base (a zero base: since
// the version was added).
func (s *vstats) read(now time.Time, base [numCodes]int64) Stats {
	st := Stats{InFlight: s.inflight.Load()}
	for c, n := range s.counts() {
		n -= base[c]
		st.Requests += n
		if c == int(serving.OK) || n == 0 {
			continue
		}
		if st.Errors == nil {
			st.Errors = make(map[serving.Code]int64)
		}
		st.Errors[serving.Code(c)] = n
		if IsFailure(serving.Code(c)) {
			st.Failures += n
		}
	}
	var h histogram
	st.WindowRequests, st.WindowFailures = s.win.sum(now, &h)
	st.P50, st.P99 = h.quantile(0.5), h.quantile(0.99)
	return st
}

// The sliding window is a ring of numSlots slots, each counting the
// requests of one sixth of the window with a latency histogram. A slot is
// zeroed when time comes back round to it, so memory is fixed: about 15 KiB
// per version. Reads sum the slots that are not older than the window, so
// they cover between five and six sixths of it.
const numSlots = 6

// Latency buckets are log-linear, as HdrHistogram's: 8 per power of two
// (each at most 12.5 % wide) from 16 ns to 2^41 ns (36 min), and one per
// nanosecond below 16 ns. Percentiles interpolate within a bucket, so they
// are off by well under 12.5 %: enough for a guard on p99.
const (
	subBits    = 3
	subBuckets = 1 << subBits
	linear     = 2 * subBuckets // values below this get a bucket each
	maxExp     = 40             // highest power of two with its own buckets
	numBuckets = linear + (maxExp-subBits)*subBuckets
)

type window struct {
	base  time.Time
	width time.Duration // of one slot
	slots [numSlots]wslot
}

type wslot struct {
	// epoch is the slot's period number plus one (0: never used). A writer
	// that finds an older epoch zeroes the slot first under mu; one that
	// raced the rotation may land its count in the newer period, an error
	// of a request or two at a slot boundary.
	epoch    atomic.Int64
	mu       sync.Mutex
	requests atomic.Int64
	failures atomic.Int64
	hist     [numBuckets]atomic.Int64
}

func newWindow(now time.Time, d time.Duration) window {
	return window{base: now, width: d / numSlots}
}

// period numbers time from the window's creation: now.Sub(base) uses the
// monotonic clock, so a wall-clock step does not scramble the ring.
func (w *window) period(now time.Time) int64 { return int64(now.Sub(w.base) / w.width) }

func (w *window) record(now time.Time, d time.Duration, failed bool) {
	p := w.period(now)
	s := &w.slots[p%numSlots]
	if s.epoch.Load() != p+1 {
		s.rotate(p + 1)
	}
	s.requests.Add(1)
	if failed {
		s.failures.Add(1)
	}
	s.hist[bucketOf(int64(d))].Add(1)
}

func (s *wslot) rotate(epoch int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch.Load() >= epoch {
		return
	}
	s.requests.Store(0)
	s.failures.Store(0)
	for i := range s.hist {
		s.hist[i].Store(0)
	}
	s.epoch.Store(epoch)
}

// sum adds the live slots into h and returns their request and failure
// counts.
func (w *window) sum(now time.Time, h *histogram) (requests, failures int64) {
	cur := w.period(now) + 1
	for i := range w.slots {
		s := &w.slots[i]
		if e := s.epoch.Load(); e == 0 || e > cur || e <= cur-numSlots {
			continue
		}
		requests += s.requests.Load()
		failures += s.failures.Load()
		for b := range s.hist {
			h[b] += s.hist[b].Load()
		}
	}
	return requests, failures
}

type histogram [numBuckets]int64

func bucketOf(ns int64) int {
	if ns < linear {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 1
	if e > maxExp {
		return numBuckets - 1
	}
	sub := int(ns>>(e-subBits)) & (subBuckets - 1)
	return linear + (e-subBits-1)*subBuckets + sub
}

// bucketLow is the smallest value of bucket i.
func bucketLow(i int) int64 {
	if i < linear {
		return int64(i)
	}
	e := (i-linear)/subBuckets + subBits + 1
	sub := int64((i - linear) % subBuckets)
	return (subBuckets + sub) << (e - subBits)
}

// quantile interpolates the q-quantile within its bucket; 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var before int64
	for i, n := range h {
		if n == 0 {
			continue
		}
		if float64(before+n) >= rank {
			lo, hi := bucketLow(i), bucketLow(i+1)
			frac := (rank - float64(before)) / float64(n)
			return time.Duration(float64(lo) + frac*float64(hi-lo))
		}
		before += n
	}
	return time.Duration(bucketLow(numBuckets - 1))
}

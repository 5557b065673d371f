package quality

import "math"

// Detector names a streaming change detector on the per-prediction error.
type Detector string

// The detectors. Each reads, in the order labels arrive, one error per
// labelled prediction: 1 for a wrong class and 0 for a right one
// (classifiers), or the absolute error over the reference's MAE
// (regression; the raw absolute error without a reference).
const (
	// PageHinkley is the Page–Hinkley test for a rise of the mean: it sums
	// each error's excess over the running mean less a tolerance δ and
	// detects when the sum climbs λ above its minimum. Fast and O(1), it
	// suits an abrupt rise.
	PageHinkley Detector = "page_hinkley"
	// ADWIN keeps an adaptive window of recent errors as an exponential
	// histogram (Bifet and Gavaldà's ADWIN2, O(log W) memory) and detects
	// when two parts of it have means further apart than a bound that
	// holds with confidence 1−δ; it then forgets the older part. It needs
	// no scale, and catches slow drifts too.
	ADWIN Detector = "adwin"
)

// Defaults of the detectors: River's (a streaming-ML library), but for
// Page–Hinkley's warm-up of 100 values rather than 30 before it sums: the
// running mean of the first few is far off (0 after a lucky streak), and a
// sum started on it climbs as the mean settles, which puts its minimum,
// and the "before" of a detection, at the warm-up.
const (
	DefaultPHDelta     = 0.005
	DefaultPHLambda    = 50
	DefaultPHMinErrors = 100
	DefaultADWINDelta  = 0.002
)

// pageHinkley detects a rise of the mean of a stream. Besides the test's
// state it keeps the running mean where the cumulative sum was lowest
// and the values since, to say what the mean rose from and to.
type pageHinkley struct {
	delta, lambda float64
	minN          int64
	n             int64
	mean, sum     float64
	minSum        float64
	meanAtMin     float64
	sinceN        int64
	sinceSum      float64
}

func newPageHinkley(delta, lambda float64, minN int64) *pageHinkley {
	return &pageHinkley{delta: delta, lambda: lambda, minN: minN}
}

// add takes one value; it reports a detected rise, with the mean before
// it and since, and then starts afresh.
func (p *pageHinkley) add(x float64) (detected bool, before, after float64) {
	p.n++
	p.mean += (x - p.mean) / float64(p.n)
	if p.n <= p.minN {
		// Warm up: a sum started on the first few values would drift with
		// the running mean as it settles, and put its minimum there.
		p.meanAtMin = p.mean
		return false, 0, 0
	}
	p.sum += x - p.mean - p.delta
	if p.sum < p.minSum {
		p.minSum, p.meanAtMin, p.sinceN, p.sinceSum = p.sum, p.mean, 0, 0
	} else {
		p.sinceN++
		p.sinceSum += x
	}
	if p.sum-p.minSum > p.lambda {
		before, after = p.meanAtMin, p.sinceSum/float64(max(p.sinceN, 1))
		*p = pageHinkley{delta: p.delta, lambda: p.lambda, minN: p.minN}
		return true, before, after
	}
	return false, 0, 0
}

// adwin is ADWIN2: an exponential histogram of buckets, row i holding up
// to adwinMaxBuckets buckets of 2^i values each (their total and sum of
// squared deviations), oldest first in each row; higher rows are older.
type adwin struct {
	delta      float64
	rows       [][]bucket
	n          int64
	total      float64
	m2         float64 // the window's sum of squared deviations
	sinceCheck int
}

type bucket struct{ total, m2 float64 }

const (
	adwinMaxBuckets = 5
	adwinClock      = 32 // check for a cut every 32 values
	adwinMinSide    = 5  // the fewest values each side of a cut holds
)

func newADWIN(delta float64) *adwin { return &adwin{delta: delta} }

// add takes one value; it reports a change detected, with the means of the
// older part dropped and of the part kept.
func (a *adwin) add(x float64) (detected bool, older, newer float64) {
	if a.n > 0 {
		d := x - a.total/float64(a.n)
		a.m2 += float64(a.n) * d * d / float64(a.n+1)
	}
	a.n++
	a.total += x
	if len(a.rows) == 0 {
		a.rows = append(a.rows, make([]bucket, 0, adwinMaxBuckets+1))
	}
	a.rows[0] = append(a.rows[0], bucket{total: x})
	a.compress()
	if a.sinceCheck++; a.sinceCheck < adwinClock {
		return false, 0, 0
	}
	a.sinceCheck = 0
	for {
		cut, o, nw := a.cut()
		if !cut {
			return detected, older, newer
		}
		if !detected {
			older, newer = o, nw
		}
		detected = true
		a.dropOldest()
	}
}

// compress merges the two oldest buckets of a row that overflows into the
// newest bucket of the next row.
func (a *adwin) compress() {
	for i := 0; i < len(a.rows) && len(a.rows[i]) > adwinMaxBuckets; i++ {
		row := a.rows[i]
		b1, b2 := row[0], row[1]
		size := math.Ldexp(1, i)
		d := (b1.total - b2.total) / size
		merged := bucket{total: b1.total + b2.total, m2: b1.m2 + b2.m2 + size/2*d*d}
		a.rows[i] = append(row[:0], row[2:]...)
		if i+1 == len(a.rows) {
			a.rows = append(a.rows, make([]bucket, 0, adwinMaxBuckets+1))
		}
		a.rows[i+1] = append(a.rows[i+1], merged)
	}
}

// cut looks for a split of the window, from the oldest bucket on, whose
// two sides' means differ by more than ε_cut: the variance form of Bifet
// and Gavaldà's bound, with δ' = δ/ln n.
func (a *adwin) cut() (bool, float64, float64) {
	if a.n < 2*adwinMinSide {
		return false, 0, 0
	}
	n := float64(a.n)
	v := a.m2 / n
	dd := math.Log(2 * math.Log(n) / a.delta)
	var n0, t0 float64
	for i := len(a.rows) - 1; i >= 0; i-- {
		size := math.Ldexp(1, i)
		for _, b := range a.rows[i] {
			n0 += size
			t0 += b.total
			n1 := n - n0
			if n1 < adwinMinSide {
				return false, 0, 0
			}
			if n0 < adwinMinSide {
				continue
			}
			m0, m1 := t0/n0, (a.total-t0)/n1
			m := 1/n0 + 1/n1
			if math.Abs(m0-m1) > math.Sqrt(2*m*v*dd)+2.0/3*dd*m {
				return true, m0, m1
			}
		}
	}
	return false, 0, 0
}

// dropOldest forgets the oldest bucket.
func (a *adwin) dropOldest() {
	i := len(a.rows) - 1
	for i >= 0 && len(a.rows[i]) == 0 {
		i--
	}
	if i < 0 {
		return
	}
	b := a.rows[i][0]
	a.rows[i] = append(a.rows[i][:0], a.rows[i][1:]...)
	size := math.Ldexp(1, i)
	nOld := float64(a.n)
	a.n -= int64(size)
	a.total -= b.total
	if a.n > 0 {
		// Removing a group from the window: M2 less the group's M2 and
		// its share of the between-group term.
		d := b.total/size - a.total/float64(a.n)
		a.m2 = max(a.m2-b.m2-size*float64(a.n)/nOld*d*d, 0)
	} else {
		a.m2 = 0
	}
	for len(a.rows) > 0 && len(a.rows[len(a.rows)-1]) == 0 {
		a.rows = a.rows[:len(a.rows)-1]
	}
}

package stats

import (
	"math"
	"sort"
)

// PSIEpsilon replaces an empty bin's share in PSI, so a bin empty on one
// side adds a large but finite term instead of an infinite one. It is
// Evidently's value (0.0001); shares are not renormalised afterwards.
const PSIEpsilon = 1e-4

func shares(c []float64) []float64 {
	var n float64
	for _, v := range c {
		n += v
	}
	p := make([]float64, len(c))
	if n == 0 {
		return p
	}
	for i, v := range c {
		p[i] = v / n
	}
	return p
}

// PSI is the population stability index of counts b (current) against a
// (reference) over the same bins: sum over bins of (pa - pb)·ln(pa/pb),
// with empty shares replaced by PSIEpsilon.
func PSI(a, b []float64) float64 {
	pa, pb := shares(a), shares(b)
	var s float64
	for i := range pa {
		x, y := pa[i], pb[i]
		if x == 0 {
			x = PSIEpsilon
		}
		if y == 0 {
			y = PSIEpsilon
		}
		s += (x - y) * math.Log(x/y)
	}
	return s
}

// JensenShannon is the Jensen–Shannon distance (the square root of the
// divergence) between the distributions of counts a and b, in base 2 so it
// lies in [0, 1]: scipy.spatial.distance.jensenshannon(a, b, base=2).
func JensenShannon(a, b []float64) float64 {
	pa, pb := shares(a), shares(b)
	var l, r float64
	for i := range pa {
		m := (pa[i] + pb[i]) / 2
		l += relEntr(pa[i], m)
		r += relEntr(pb[i], m)
	}
	js := (l + r) / math.Log(2)
	return math.Sqrt(max(js, 0) / 2)
}

func relEntr(x, y float64) float64 {
	switch {
	case x == 0 && y >= 0:
		return 0
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	}
	return math.Inf(1)
}

// Hellinger is the Hellinger distance between the distributions of counts a
// and b: the Euclidean distance of their square-root shares over sqrt(2),
// in [0, 1].
func Hellinger(a, b []float64) float64 {
	pa, pb := shares(a), shares(b)
	var s float64
	for i := range pa {
		d := math.Sqrt(pa[i]) - math.Sqrt(pb[i])
		s += d * d
	}
	return math.Sqrt(s) / math.Sqrt2
}

// LInf is the L-infinity distance between the distributions of counts a and
// b: the largest difference of one bin's (category's) share, in [0, 1].
func LInf(a, b []float64) float64 {
	pa, pb := shares(a), shares(b)
	var d float64
	for i := range pa {
		d = max(d, math.Abs(pa[i]-pb[i]))
	}
	return d
}

// Wasserstein is the first Wasserstein (earth mover's) distance between two
// weighted samples, the area between their CDFs, as
// scipy.stats.wasserstein_distance(u, v, uw, vw) computes it. Nil weights
// weigh every value equally. It sorts copies; the inputs are not changed.
func Wasserstein(u, uw, v, vw []float64) float64 {
	us, uws := sortWeighted(u, uw)
	vs, vws := sortWeighted(v, vw)
	var ut, vt float64
	for _, w := range uws {
		ut += w
	}
	for _, w := range vws {
		vt += w
	}
	// Walk the merged support; between consecutive support points both
	// CDFs are constant.
	var i, j int
	var uc, vc, dist float64
	prev := math.Inf(-1)
	for i < len(us) || j < len(vs) {
		var x float64
		switch {
		case j >= len(vs) || (i < len(us) && us[i] <= vs[j]):
			x = us[i]
		default:
			x = vs[j]
		}
		if !math.IsInf(prev, -1) {
			dist += math.Abs(uc/ut-vc/vt) * (x - prev)
		}
		for i < len(us) && us[i] == x {
			uc += uws[i]
			i++
		}
		for j < len(vs) && vs[j] == x {
			vc += vws[j]
			j++
		}
		prev = x
	}
	return dist
}

func sortWeighted(x, w []float64) ([]float64, []float64) {
	xs := append([]float64(nil), x...)
	ws := make([]float64, len(x))
	if w == nil {
		for i := range ws {
			ws[i] = 1
		}
	} else {
		copy(ws, w)
	}
	sort.Sort(byValue{xs, ws})
	return xs, ws
}

type byValue struct{ x, w []float64 }

func (b byValue) Len() int           { return len(b.x) }
func (b byValue) Less(i, j int) bool { return b.x[i] < b.x[j] }
func (b byValue) Swap(i, j int) {
	b.x[i], b.x[j] = b.x[j], b.x[i]
	b.w[i], b.w[j] = b.w[j], b.w[i]
}

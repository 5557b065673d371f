package drift

import (
	"slices"

	"github.com/servekit/servekit/drift/internal/stats"
)

// Correction names how p-values are adjusted for testing many features in
// one window.
type Correction string

// The corrections.
const (
	// Bonferroni multiplies each p-value by the number of tests: the chance
	// of any false alarm in a window stays below alpha (family-wise error).
	Bonferroni Correction = "bonferroni"
	// BenjaminiHochberg bounds the expected share of false alarms among the
	// alarms (false discovery rate): more power with many features.
	BenjaminiHochberg Correction = "benjamini_hochberg"
	// NoCorrection compares each p-value with alpha as it is.
	NoCorrection Correction = "none"
)

// Default thresholds, Evidently's: a p-value below 0.05 is drift; a
// distance at or above 0.1 is drift.
const (
	DefaultAlpha    = 0.05
	DefaultDistance = 0.1
	// wassersteinFloor keeps the normalised Wasserstein distance finite for
	// a constant reference, as Evidently does.
	wassersteinFloor = 0.001
)

// evalConfig is what evaluating a window depends on.
type evalConfig struct {
	exactLimit  int
	minSamples  int64
	largeSample int64
	thresholds  map[Statistic]float64
	method      Statistic            // for every feature, when set
	methods     map[string]Statistic // per feature
	correction  Correction
	clearRatio  float64
	tolerances  map[Check]float64 // data-quality checks
	mvBand      float64           // multivariate band, in standard errors
}

func (c *evalConfig) threshold(s Statistic) float64 {
	if t, ok := c.thresholds[s]; ok {
		return t
	}
	if s.Test() {
		return DefaultAlpha
	}
	return DefaultDistance
}

// computes lists the statistics computed for a feature of this profile.
func computes(fp *FeatureProfile) []Statistic {
	switch {
	case fp.Kind == Categorical:
		return []Statistic{ChiSquare, PSI, JensenShannon, Hellinger, LInf}
	case fp.Discrete:
		return []Statistic{ChiSquare, KS, PSI, JensenShannon, Wasserstein, Hellinger, LInf}
	}
	return []Statistic{KS, PSI, JensenShannon, Wasserstein, Hellinger}
}

// method picks the statistic that decides for a feature, in Evidently's
// spirit: a test for small samples, a distance for large ones, where any
// test flags shifts too small to matter. The sample size is the smaller of
// the reference's and the window's: it is what sets a test's power
// (Evidently looks at the reference alone, which in streaming is the
// large one).
func (c *evalConfig) methodFor(fp *FeatureProfile, n int64) Statistic {
	if m, ok := c.methods[fp.Name]; ok {
		return m
	}
	if c.method != "" && slices.Contains(computes(fp), c.method) {
		return c.method
	}
	small := min(n, fp.Count) <= c.largeSample
	switch {
	case fp.Kind == Categorical || fp.Discrete:
		if small {
			return ChiSquare
		}
		return JensenShannon
	case small:
		return KS
	}
	return Wasserstein
}

// evaluate computes every feature's statistics and this window's verdicts
// (before hysteresis). clean[i] says feature i is far enough from its
// threshold to count towards clearing an alarm.
func evaluate(p *Profile, states []FeatureState, cfg *evalConfig) (out []FeatureResult, clean []bool) {
	out = make([]FeatureResult, len(p.Features))
	clean = make([]bool, len(p.Features))
	var tests []int
	for i := range p.Features {
		fp, st := &p.Features[i], &states[i]
		fr := &out[i]
		*fr = FeatureResult{
			Name: fp.Name, Kind: fp.Kind, Discrete: fp.Discrete,
			Count: st.N, Missing: st.Missing, RefCount: fp.Count, RefMissing: fp.Missing,
			Status: StatusInsufficient,
		}
		if fp.Kind == Numerical {
			fr.RefMean = fp.Mean
			if st.N > 0 {
				fr.Mean = st.Sum / float64(st.N)
			}
		}
		fr.Quality = dataQuality(fp, st, cfg)
		if st.N == 0 {
			continue
		}
		fr.Statistics, fr.Exact = statistics(fp, st, cfg.exactLimit)
		fr.Bins = chartBins(fp, st)
		fr.Method = cfg.methodFor(fp, st.N)
		fr.Threshold = cfg.threshold(fr.Method)
		v, _ := fr.Value(fr.Method)
		if fr.Method.Test() {
			fr.Score = v.PValue
		} else {
			fr.Score = v.Value
		}
		if st.N < cfg.minSamples {
			continue
		}
		fr.Status = StatusOK
		if fr.Method.Test() {
			tests = append(tests, i)
			continue
		}
		fr.Drifted = fr.Score >= fr.Threshold
		clean[i] = fr.Score < fr.Threshold*cfg.clearRatio
	}
	// Correct the p-values of the features judged by a test, together.
	ps := make([]float64, len(tests))
	for j, i := range tests {
		ps[j] = out[i].Score
	}
	switch cfg.correction {
	case Bonferroni:
		ps = stats.Bonferroni(ps)
	case BenjaminiHochberg:
		ps = stats.BenjaminiHochberg(ps)
	}
	for j, i := range tests {
		fr := &out[i]
		fr.AdjustedP = ps[j]
		fr.Drifted = fr.AdjustedP < fr.Threshold
		clean[i] = fr.AdjustedP >= min(1, fr.Threshold/cfg.clearRatio)
	}
	for i := range out {
		if out[i].Drifted {
			out[i].Status = StatusDrift
		}
	}
	return out, clean
}

// statistics computes a feature's statistics on one window.
func statistics(fp *FeatureProfile, st *FeatureState, exactLimit int) ([]Value, bool) {
	ref, cur := floats(fp.Counts), floats(st.Counts)
	if fp.Kind == Categorical {
		chi, p, _ := stats.ChiSquare2xK(ref, cur)
		return []Value{
			{Statistic: ChiSquare, Value: chi, PValue: p},
			{Statistic: PSI, Value: stats.PSI(ref, cur)},
			{Statistic: JensenShannon, Value: stats.JensenShannon(ref, cur)},
			{Statistic: Hellinger, Value: stats.Hellinger(ref, cur)},
			{Statistic: LInf, Value: stats.LInf(ref, cur)},
		}, true
	}
	exact := fp.Values != nil && !st.Overflow && len(st.Values) == int(st.N) && int(st.N) <= exactLimit
	cref, ccur := coarse(fp, ref), coarse(fp, cur)
	out := make([]Value, 0, 7)
	if fp.Discrete {
		chi, p, _ := stats.ChiSquare2xK(ref, cur)
		out = append(out, Value{Statistic: ChiSquare, Value: chi, PValue: p})
	}
	out = append(out, ksValue(fp, st, ref, cur, exact))
	out = append(out, Value{Statistic: PSI, Value: stats.PSI(cref, ccur)},
		Value{Statistic: JensenShannon, Value: stats.JensenShannon(cref, ccur)},
		wassersteinValue(fp, st, exact),
		Value{Statistic: Hellinger, Value: stats.Hellinger(cref, ccur)})
	if fp.Discrete {
		out = append(out, Value{Statistic: LInf, Value: stats.LInf(cref, ccur)})
	}
	return out, exact
}

func floats(c []int64) []float64 {
	f := make([]float64, len(c))
	for i, v := range c {
		f[i] = float64(v)
	}
	return f
}

// coarse groups fine-bin counts into the coarse bins bounded by the edges
// fp.Coarse names.
func coarse(fp *FeatureProfile, fine []float64) []float64 {
	out := make([]float64, len(fp.Coarse)+1)
	j := 0
	for b, c := range fine {
		// Fine bin b spans (edge b-1, edge b]: it lies above coarse edge j
		// when that edge's index is below b.
		for j < len(fp.Coarse) && fp.Coarse[j] < b {
			j++
		}
		out[j] += c
	}
	return out
}

// ksValue is the KS test: on the raw samples when both are kept (exactly
// ks_2samp), else on the fine bins. The binned statistic D_b is the largest
// CDF gap at the bin edges; within a bin neither CDF can rise by more than
// that bin's share, so the raw D lies in [D_b, D_b + the largest share of a
// bin on either side], which is the Bound. Its p-value is that of D_b, the
// larger (more conservative) one.
func ksValue(fp *FeatureProfile, st *FeatureState, ref, cur []float64, exact bool) Value {
	if exact {
		d := stats.KS2Sorted(fp.Values, sorted(st.Values))
		p, d := stats.KSPValue(d, len(fp.Values), len(st.Values))
		return Value{Statistic: KS, Value: d, PValue: p}
	}
	d := stats.KSCounts(fp.Counts, st.Counts)
	var bound float64
	for i := range ref {
		bound = max(bound, ref[i]/float64(fp.Count), cur[i]/float64(st.N))
	}
	p, d := stats.KSPValue(d, int(fp.Count), int(st.N))
	return Value{Statistic: KS, Value: d, PValue: p, Bound: min(bound, 1-d)}
}

func sorted(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}

// wassersteinValue is the Wasserstein-1 distance over the reference's
// standard deviation (at least 0.001), Evidently's "normed" Wasserstein: on
// the raw samples when both are kept, else on the fine bins with every
// value moved to its bin's mean. Moving a value within an interval of width
// w to the interval's mean moves it by at most w/2 on average, so the bound
// is half the share-weighted bin widths of both sides, over the std; the
// outer bins' widths come from the window's min and max.
func wassersteinValue(fp *FeatureProfile, st *FeatureState, exact bool) Value {
	norm := max(fp.Std, wassersteinFloor)
	if exact {
		return Value{Statistic: Wasserstein, Value: stats.Wasserstein(fp.Values, nil, st.Values, nil) / norm}
	}
	uv, uw := binMeans(fp.Counts, fp.Sums)
	vv, vw := binMeans(st.Counts, st.Sums)
	var spread float64
	e := fp.Edges
	for b, c := range st.Counts {
		if c == 0 {
			continue
		}
		lo, hi := st.Min, st.Max
		if b > 0 {
			lo = max(lo, e[b-1])
		}
		if b < len(e) {
			hi = min(hi, e[b])
		}
		spread += float64(c) / float64(st.N) * (hi - lo)
	}
	for b := 1; b < len(e); b++ { // bin 0 holds only the minimum, the last nothing
		spread += float64(fp.Counts[b]) / float64(fp.Count) * (e[b] - e[b-1])
	}
	w := stats.Wasserstein(uv, uw, vv, vw) / norm
	return Value{Statistic: Wasserstein, Value: w, Bound: spread / 2 / norm}
}

func binMeans(counts []int64, sums []float64) (vals, weights []float64) {
	for i, c := range counts {
		if c > 0 {
			vals = append(vals, sums[i]/float64(c))
			weights = append(weights, float64(c))
		}
	}
	return vals, weights
}

// displayBins is about how many bars a numerical chart has.
const displayBins = 20

// chartBins are the bars of a feature's chart: categories (and "other"),
// the values of a discrete feature, or about twenty groups of fine bins
// with the outer bins folded into their neighbours so every bar has a
// width.
func chartBins(fp *FeatureProfile, st *FeatureState) []Bin {
	share := func(c, n int64) float64 {
		if n == 0 {
			return 0
		}
		return float64(c) / float64(n)
	}
	var bins []Bin
	switch {
	case fp.Kind == Categorical:
		for i, c := range fp.Categories {
			bins = append(bins, Bin{Label: c, Ref: share(fp.Counts[i], fp.Count), Cur: share(st.Counts[i], st.N)})
		}
		k := len(fp.Categories)
		return append(bins, Bin{Label: "(other)", Ref: share(fp.Counts[k], fp.Count), Cur: share(st.Counts[k], st.N)})
	case fp.Discrete:
		for i, e := range fp.Edges {
			bins = append(bins, Bin{Label: formatNumber(e), Lo: e, Hi: e, Ref: share(fp.Counts[i], fp.Count), Cur: share(st.Counts[i], st.N)})
		}
		k := len(fp.Edges)
		if st.Counts[k] > 0 {
			bins = append(bins, Bin{Label: "> " + formatNumber(fp.Edges[k-1]), Lo: fp.Edges[k-1], Hi: st.Max, Cur: share(st.Counts[k], st.N)})
		}
		return bins
	}
	e := fp.Edges
	if len(e) < 2 {
		return []Bin{{Lo: e[0], Hi: e[0], Ref: 1, Cur: share(st.Counts[0]+st.Counts[1], st.N)}}
	}
	// Interior fine bins are 1..len(e)-1; fold bin 0 into the first group
	// and the last bin into the last.
	inner := len(e) - 1
	per := (inner + displayBins - 1) / displayBins
	for first := 1; first <= inner; first += per {
		last := min(first+per-1, inner)
		var rc, cc int64
		for b := first; b <= last; b++ {
			rc += fp.Counts[b]
			cc += st.Counts[b]
		}
		lo, hi := e[first-1], e[last]
		if first == 1 {
			rc += fp.Counts[0]
			cc += st.Counts[0]
			if st.N > 0 {
				lo = min(lo, st.Min)
			}
		}
		if last == inner {
			cc += st.Counts[inner+1]
			if st.N > 0 {
				hi = max(hi, st.Max)
			}
		}
		bins = append(bins, Bin{Lo: lo, Hi: hi, Ref: share(rc, fp.Count), Cur: share(cc, st.N)})
	}
	return bins
}

package quality

import (
	"math"
	"slices"
)

// logEps clips probabilities away from 0 and 1 before a logarithm, as
// scikit-learn's log_loss does for float64 (np.finfo(float64).eps).
const logEps = 0x1p-52

// eceBins is the number of equal-width score bins of the calibration
// error.
const eceBins = 10

// realized computes the task's metrics from predictions and their labels:
// scores holds w values per row (n = len(labels) rows). Each metric
// follows scikit-learn (see the package doc and testdata/golden/gen.py).
func realized(t *Task, scores, labels []float64) values {
	var out values
	if len(labels) == 0 {
		return out
	}
	switch t.Kind {
	case Binary:
		binaryRealized(scores, labels, t.Threshold, &out)
	case Multiclass:
		multiclassRealized(scores, labels, t.NumClasses, &out)
	default:
		regressionRealized(scores, labels, &out)
	}
	return out
}

// confusion counts a binary classifier's outcomes.
type confusion struct{ tp, fp, fn, tn float64 }

func (c confusion) accuracy() float64 { return (c.tp + c.tn) / (c.tp + c.fp + c.fn + c.tn) }
func (c confusion) precision() float64 {
	return ratio(c.tp, c.tp+c.fp)
}
func (c confusion) recall() float64 { return ratio(c.tp, c.tp+c.fn) }
func (c confusion) f1() float64     { return ratio(2*c.tp, 2*c.tp+c.fp+c.fn) }

// ratio is a/b, NaN (undefined) when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func binaryRealized(s, y []float64, threshold float64, out *values) {
	var c confusion
	var ll, brier float64
	for i, p := range s {
		pos := y[i] == 1
		switch {
		case p >= threshold && pos:
			c.tp++
		case p >= threshold:
			c.fp++
		case pos:
			c.fn++
		default:
			c.tn++
		}
		q := clip01(p)
		lq := min(max(q, logEps), 1-logEps)
		if pos {
			ll -= math.Log(lq)
		} else {
			ll -= math.Log(1 - lq)
		}
		d := y[i] - q
		brier += d * d
	}
	n := float64(len(y))
	out.set(Accuracy, c.accuracy())
	out.set(Precision, c.precision())
	out.set(Recall, c.recall())
	out.set(F1, c.f1())
	out.set(AUC, auc(s, y, 1))
	out.set(LogLoss, ll/n)
	out.set(Brier, brier/n)
	out.set(CalibrationError, ece(len(s), func(i int) (float64, float64) { return clip01(s[i]), y[i] }))
}

func clip01(p float64) float64 { return min(max(p, 0), 1) }

// auc is the area under the ROC curve of scores s (every stride-th value)
// against y == 1: the Mann–Whitney statistic, ties counted half, which is
// scikit-learn's trapezoidal area. NaN when y has one class only. The
// positives' and the negatives' scores are sorted apart (plain float64
// sorts, much faster than sorting pairs by a comparison function) and
// merged: each positive wins over the negatives below it and half those
// equal to it, counted in integers until the one division.
func auc(s, y []float64, stride int) float64 {
	var pos, neg []float64
	for i, v := range y {
		if v == 1 {
			pos = append(pos, s[i*stride])
		} else {
			neg = append(neg, s[i*stride])
		}
	}
	if len(pos) == 0 || len(neg) == 0 {
		return math.NaN()
	}
	slices.Sort(pos)
	slices.Sort(neg)
	var twiceWins int64
	below, equal := 0, 0 // negatives < and == the current positive's score
	for i, p := range pos {
		if i > 0 && p == pos[i-1] {
			twiceWins += int64(2*below + equal)
			continue
		}
		for below < len(neg) && neg[below] < p {
			below++
		}
		equal = 0
		for below+equal < len(neg) && neg[below+equal] == p {
			equal++
		}
		twiceWins += int64(2*below + equal)
	}
	return float64(twiceWins) / (2 * float64(len(pos)) * float64(len(neg)))
}

// pair is a score and a weight (a label, or a probability).
type pair struct{ s, w float64 }

// sortedPairs pairs n scores (every sStride-th of s) with f of their
// weights (every wStride-th of w), sorted by score (scores are finite:
// invalid ones never reach the metrics). Sorting the pairs themselves,
// not indices into them, keeps the comparisons on contiguous memory.
func sortedPairs(s []float64, sStride int, w []float64, wStride, n int, f func(float64) float64) []pair {
	ps := make([]pair, n)
	for i := range ps {
		ps[i] = pair{s[i*sStride], f(w[i*wStride])}
	}
	slices.SortFunc(ps, func(a, b pair) int {
		switch {
		case a.s < b.s:
			return -1
		case a.s > b.s:
			return 1
		}
		return 0
	})
	return ps
}

// cmpFloat orders NaNs first, so they group together.
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	case a != a && b != b:
		return 0
	case a != a:
		return -1
	}
	return 1
}

// ece is the expected calibration error over n rows, each a confidence in
// [0, 1] and an outcome (1 correct or positive, 0 not): the binning of
// scikit-learn's calibration_curve(strategy="uniform", n_bins=10), whose
// inner edges are k·0.1 as NumPy's linspace computes them, and a value on
// an edge goes to the bin below it.
func ece(n int, row func(i int) (conf, outcome float64)) float64 {
	var cnt [eceBins]float64
	var sumConf, sumOut [eceBins]float64
	for i := range n {
		p, o := row(i)
		b := 0
		for b < eceBins-1 && float64(b+1)*0.1 < p {
			b++
		}
		cnt[b]++
		sumConf[b] += p
		sumOut[b] += o
	}
	var e float64
	for b := range eceBins {
		if cnt[b] > 0 {
			e += cnt[b] / float64(n) * math.Abs(sumOut[b]/cnt[b]-sumConf[b]/cnt[b])
		}
	}
	return e
}

// argmax is the first largest of row's values; NaNs are passed over.
func argmax(row []float64) int {
	best, at := math.Inf(-1), 0
	for j, v := range row {
		if v > best {
			best, at = v, j
		}
	}
	return at
}

func multiclassRealized(s, y []float64, k int, out *values) {
	n := len(y)
	tp := make([]float64, k)
	predicted := make([]float64, k) // TP+FP per class
	actual := make([]float64, k)    // TP+FN per class
	var correct, ll float64
	for i := range n {
		row := s[i*k : (i+1)*k]
		pred, truth := argmax(row), int(y[i])
		predicted[pred]++
		actual[truth]++
		if pred == truth {
			tp[pred]++
			correct++
		}
		// log_loss: clip each score, renormalise the row, take the truth's.
		var sum float64
		for _, v := range row {
			sum += min(max(v, logEps), 1-logEps)
		}
		ll -= math.Log(min(max(row[truth], logEps), 1-logEps) / sum)
	}
	out.set(Accuracy, correct/float64(n))
	// Macro averages over the classes that occur in the labels or the
	// predictions, an undefined class ratio counting 0, as scikit-learn's
	// average="macro" with zero_division=0.
	var prec, rec, f1 float64
	var present float64
	for c := range k {
		if predicted[c] == 0 && actual[c] == 0 {
			continue
		}
		present++
		prec += zeroIfNaN(ratio(tp[c], predicted[c]))
		rec += zeroIfNaN(ratio(tp[c], actual[c]))
		f1 += zeroIfNaN(ratio(2*tp[c], predicted[c]+actual[c]))
	}
	out.set(Precision, prec/present)
	out.set(Recall, rec/present)
	out.set(F1, f1/present)
	// One-vs-rest AUC, macro: defined only when every class occurs, as
	// roc_auc_score(multi_class="ovr") requires.
	aucSum := 0.0
	yk := make([]float64, n)
	for c := range k {
		for i := range n {
			yk[i] = b2f(int(y[i]) == c)
		}
		a := auc(s[c:], yk, k)
		if a != a {
			aucSum = math.NaN()
			break
		}
		aucSum += a
	}
	out.set(AUC, aucSum/float64(k))
	out.set(LogLoss, ll/float64(n))
	out.set(CalibrationError, ece(n, func(i int) (float64, float64) {
		row := s[i*k : (i+1)*k]
		j := argmax(row)
		return clip01(row[j]), b2f(j == int(y[i]))
	}))
}

func zeroIfNaN(v float64) float64 {
	if v != v {
		return 0
	}
	return v
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func regressionRealized(pred, y []float64, out *values) {
	n := float64(len(y))
	var ae, se, ape, mean float64
	for i, p := range pred {
		d := y[i] - p
		ae += math.Abs(d)
		se += d * d
		ape += math.Abs(d) / max(math.Abs(y[i]), logEps)
		mean += y[i]
	}
	mean /= n
	var ss float64
	for _, v := range y {
		ss += (v - mean) * (v - mean)
	}
	out.set(MAE, ae/n)
	out.set(RMSE, math.Sqrt(se/n))
	out.set(MAPE, ape/n)
	// r2_score: 1 − SS_res/SS_tot; a constant truth gives 1 for a perfect
	// prediction and 0 otherwise (force_finite).
	switch {
	case ss != 0:
		out.set(R2, 1-se/ss)
	case se == 0:
		out.set(R2, 1)
	default:
		out.set(R2, 0)
	}
}

// quantile is the q-quantile of sorted values with linear interpolation
// (NumPy's default).
func quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	vi := float64(n-1) * q
	lo := math.Floor(vi)
	if int(lo) >= n-1 {
		return sorted[n-1]
	}
	a, b := sorted[int(lo)], sorted[int(lo)+1]
	t := vi - lo
	if t >= 0.5 {
		return b - float64((b-a)*(1-t))
	}
	return a + float64((b-a)*t)
}

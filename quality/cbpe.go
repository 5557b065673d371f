package quality

import (
	"math"
	"slices"
)

// Confidence-based performance estimation (CBPE, after NannyML): with
// calibrated probabilities, each prediction is right with a known
// probability, so the expected confusion matrix of a window, and every
// metric computed from it, needs no labels. See the package doc.

// estimate computes the task's estimated metrics for scores (w values per
// row) with the reference's calibrators, and the window's expected row
// sets for its sampling error.
func estimate(t *Task, cals []Calibrator, scores []float64) (values, *counts) {
	var out values
	w := t.width()
	n := len(scores) / w
	if n == 0 || t.Kind == Regression {
		return out, nil
	}
	if t.Kind == Binary {
		// Every binary estimate is a sum over rows but AUC, which wants
		// them by score: sort a copy once (the calibrated probability is a
		// function of the score, so it follows), and compute all from it.
		sorted := slices.Clone(scores)
		slices.Sort(sorted)
		c := make([]float64, n)
		for i, s := range sorted {
			c[i] = cals[0].Apply(s)
		}
		binaryEstimate(sorted, c, t.Threshold, &out)
		return out, windowCounts(t, sorted, nil, c)
	}
	c := calibrated(cals, scores, w)
	multiclassEstimate(scores, c, w, &out)
	return out, windowCounts(t, scores, nil, c)
}

// calibrated applies each class's calibrator to its column and
// renormalises each row to sum to 1 (uniform when all are 0).
func calibrated(cals []Calibrator, scores []float64, k int) []float64 {
	c := make([]float64, len(scores))
	for i := 0; i < len(scores); i += k {
		var sum float64
		for j := range k {
			c[i+j] = cals[j].Apply(scores[i+j])
			sum += c[i+j]
		}
		for j := range k {
			if sum > 0 {
				c[i+j] /= sum
			} else {
				c[i+j] = 1 / float64(k)
			}
		}
	}
	return c
}

// binaryEstimate: s sorted, c its calibrated probabilities.
func binaryEstimate(s, c []float64, threshold float64, out *values) {
	var m confusion
	var ll, brier float64
	for i, p := range s {
		if p >= threshold {
			m.tp += c[i]
			m.fp += 1 - c[i]
		} else {
			m.fn += c[i]
			m.tn += 1 - c[i]
		}
		q := clip01(p)
		lq := min(max(q, logEps), 1-logEps)
		ll -= c[i]*math.Log(lq) + (1-c[i])*math.Log(1-lq)
		brier += c[i]*(1-q)*(1-q) + (1-c[i])*q*q
	}
	n := float64(len(s))
	out.set(Accuracy, m.accuracy())
	out.set(Precision, m.precision())
	out.set(Recall, m.recall())
	out.set(F1, m.f1())
	out.set(AUC, expectedAUCSorted(s, c))
	out.set(LogLoss, ll/n)
	out.set(Brier, brier/n)
	out.set(CalibrationError, ece(len(s), func(i int) (float64, float64) { return clip01(s[i]), c[i] }))
}

// expectedAUC is the area under the expected ROC curve: the model's
// scores s (every stride-th value) rank the rows, and each row counts as
// c positive and 1−c negative, ties half, as NannyML estimates it. NaN
// when the expected positives or negatives are 0.
func expectedAUC(s, c []float64, stride int) float64 {
	ps := sortedPairs(s, stride, c, stride, (len(c)+stride-1)/stride, func(v float64) float64 { return v })
	sorted, weights := make([]float64, len(ps)), make([]float64, len(ps))
	for i, p := range ps {
		sorted[i], weights[i] = p.s, p.w
	}
	return expectedAUCSorted(sorted, weights)
}

// expectedAUCSorted is expectedAUC of scores s sorted ascending with
// their probabilities c.
func expectedAUCSorted(s, c []float64) float64 {
	var pos, neg, twice float64
	for i := 0; i < len(s); {
		j := i
		var gp, gn float64
		for ; j < len(s) && s[j] == s[i]; j++ {
			gp += c[j]
			gn += 1 - c[j]
		}
		twice += gp * (2*neg + gn)
		pos += gp
		neg += gn
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return twice / (2 * pos * neg)
}

func multiclassEstimate(s, c []float64, k int, out *values) {
	n := len(s) / k
	tp := make([]float64, k)
	predicted := make([]float64, k)
	actual := make([]float64, k)
	var acc, ll float64
	for i := range n {
		row, cr := s[i*k:(i+1)*k], c[i*k:(i+1)*k]
		pred := argmax(row)
		predicted[pred]++
		tp[pred] += cr[pred]
		acc += cr[pred]
		var sum float64
		for _, v := range row {
			sum += min(max(v, logEps), 1-logEps)
		}
		for j, v := range row {
			actual[j] += cr[j]
			ll -= cr[j] * math.Log(min(max(v, logEps), 1-logEps)/sum)
		}
	}
	out.set(Accuracy, acc/float64(n))
	var prec, rec, f1, present float64
	for j := range k {
		if predicted[j] == 0 && actual[j] == 0 {
			continue
		}
		present++
		prec += zeroIfNaN(ratio(tp[j], predicted[j]))
		rec += zeroIfNaN(ratio(tp[j], actual[j]))
		f1 += zeroIfNaN(ratio(2*tp[j], predicted[j]+actual[j]))
	}
	out.set(Precision, prec/present)
	out.set(Recall, rec/present)
	out.set(F1, f1/present)
	var a float64
	for j := range k {
		a += expectedAUC(s[j:], c[j:], k)
	}
	out.set(AUC, a/float64(k))
	out.set(LogLoss, ll/float64(n))
}

// Sampling error. A metric computed on n predictions varies from window to
// window by chance alone; its standard error follows from the reference
// (with labels), as NannyML estimates it: a metric that is a mean of
// per-row values over some of the rows (accuracy over all, precision over
// the predicted positives, recall over the actual positives) has standard
// error σ/√m, σ the standard deviation of those per-row values on the
// reference and m how many rows the mean is over. AUC's is DeLong's, from
// the placements of positives among negatives and of negatives among
// positives; a macro average's is the root of the summed variances over
// the number of classes. m is taken from the window itself where it is
// known (the predicted classes; the expected positives of an estimate,
// the labelled ones of a realized value), so a window whose class mix
// moved gets the band its own mix calls for; the reference's shares stand
// in for the default alarm bounds, which ask whether a window is
// plausible under the reference.

// Over names the rows a standard-error component averages over.
type Over string

// The row sets of a component, for class Class (binary: 1, the positive).
const (
	OverAll       Over = "all"       // every row
	OverPredicted Over = "predicted" // rows predicted as the class
	OverActual    Over = "actual"    // rows of the class
	OverRest      Over = "rest"      // rows not of the class
	OverConfusion Over = "confusion" // rows predicted as or of the class: TP+FP+FN
)

func (o Over) valid() bool {
	switch o {
	case OverAll, OverPredicted, OverActual, OverRest, OverConfusion:
		return true
	}
	return false
}

// Component is one part of a metric's sampling error: the standard
// deviation of per-row values on the reference, the rows it averages over
// and their share of the reference.
type Component struct {
	Sigma float64 `json:"sigma"`
	Share float64 `json:"share"`
	Over  Over    `json:"over"`
	Class int     `json:"class,omitempty"`
}

// StdErr is what a metric's standard error is computed from:
// Scale·√(Σ σ²/m) over its components, m each one's rows.
type StdErr struct {
	Components []Component `json:"components"`
	Scale      float64     `json:"scale"`
}

// counts are a window's row sets per class: how many rows were predicted
// as each class, how many are of it (expected, for an estimate) and how
// many of those were predicted right.
type counts struct {
	n                     float64
	predicted, actual, tp []float64
}

func (c *counts) rows(o Over, class int) float64 {
	if class < 0 || class >= len(c.predicted) {
		return 0
	}
	switch o {
	case OverAll:
		return c.n
	case OverPredicted:
		return c.predicted[class]
	case OverActual:
		return c.actual[class]
	case OverRest:
		return c.n - c.actual[class]
	case OverConfusion:
		return c.predicted[class] + c.actual[class] - c.tp[class]
	}
	return 0
}

// at is the standard error for n predictions of the reference's mix (NaN
// when n is 0).
func (e StdErr) at(n int64) float64 {
	return e.over(func(c Component) float64 { return float64(n) * c.Share })
}

// window is the standard error for a window's own row sets.
func (e StdErr) window(c *counts) float64 {
	return e.over(func(k Component) float64 { return c.rows(k.Over, k.Class) })
}

func (e StdErr) over(rows func(Component) float64) float64 {
	if len(e.Components) == 0 {
		return math.NaN()
	}
	var v float64
	for _, c := range e.Components {
		m := rows(c)
		if m <= 0 {
			if c.Sigma > 0 {
				return math.NaN() // a part of the metric rests on no row
			}
			continue
		}
		v += c.Sigma * c.Sigma / m
	}
	return e.Scale * math.Sqrt(v)
}

// meanStd is the mean and population standard deviation (np.std).
func meanStd(x []float64) (mean, std float64) {
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)))
}

// component summarises per-row values over rows o of class, out of all the
// reference's rows.
func component(x []float64, all int, o Over, class int) Component {
	_, s := meanStd(x)
	return Component{Sigma: s, Share: float64(len(x)) / float64(all), Over: o, Class: class}
}

// windowCounts are the row sets of scores, by the labels when given (a
// realized value) or by the calibrated probabilities c (an estimate).
func windowCounts(t *Task, scores, labels, c []float64) *counts {
	k := max(t.width(), 2)
	out := &counts{predicted: make([]float64, k), actual: make([]float64, k), tp: make([]float64, k)}
	w := t.width()
	if t.Kind == Regression {
		out.n = float64(len(scores))
		return out
	}
	for i := 0; i < len(scores)/w; i++ {
		pred := 0
		if t.Kind == Binary {
			pred = int(b2f(scores[i] >= t.Threshold))
		} else {
			pred = argmax(scores[i*w : (i+1)*w])
		}
		out.n++
		out.predicted[pred]++
		if labels != nil {
			y := int(labels[i])
			out.actual[y]++
			if y == pred {
				out.tp[pred]++
			}
			continue
		}
		if t.Kind == Binary {
			out.actual[1] += c[i]
			out.actual[0] += 1 - c[i]
			if pred == 1 {
				out.tp[1] += c[i]
			} else {
				out.tp[0] += 1 - c[i]
			}
			continue
		}
		for j := range w {
			out.actual[j] += c[i*w+j]
		}
		out.tp[pred] += c[i*w+pred]
	}
	return out
}

// stdErrors computes each metric's standard-error components from the
// reference's scores and labels.
func stdErrors(t *Task, scores, labels []float64) map[Metric]StdErr {
	out := map[Metric]StdErr{}
	n := len(labels)
	one := func(m Metric, x []float64) {
		out[m] = StdErr{Components: []Component{component(x, n, OverAll, 0)}, Scale: 1}
	}
	switch t.Kind {
	case Binary:
		var correct, precX, recX, f1X, ll, br []float64
		var tp, fpfn float64
		for i, s := range scores {
			pred, pos := s >= t.Threshold, labels[i] == 1
			ok := b2f(pred == pos)
			correct = append(correct, ok)
			if pred {
				precX = append(precX, ok)
			}
			if pos {
				recX = append(recX, ok)
			}
			if pred || pos {
				f1X = append(f1X, b2f(pred && pos))
				if pred && pos {
					tp++
				} else {
					fpfn++
				}
			}
			q := clip01(s)
			lq := min(max(q, logEps), 1-logEps)
			ll = append(ll, -(labels[i]*math.Log(lq) + (1-labels[i])*math.Log(1-lq)))
			br = append(br, (labels[i]-q)*(labels[i]-q))
		}
		one(Accuracy, correct)
		out[Precision] = StdErr{Components: []Component{component(precX, n, OverPredicted, 1)}, Scale: 1}
		out[Recall] = StdErr{Components: []Component{component(recX, n, OverActual, 1)}, Scale: 1}
		out[F1] = StdErr{Components: []Component{f1Component(f1X, n, 1, tp, fpfn)}, Scale: 1}
		out[AUC] = StdErr{Components: placements(scores, labels, 1, 1), Scale: 1}
		one(LogLoss, ll)
		one(Brier, br)
	case Multiclass:
		k := t.NumClasses
		var correct, ll []float64
		prec, rec, f1 := make([][]float64, k), make([][]float64, k), make([][]float64, k)
		f1tp, f1n := make([]float64, k), make([]float64, k)
		for i := range n {
			row := scores[i*k : (i+1)*k]
			pred, truth := argmax(row), int(labels[i])
			ok := b2f(pred == truth)
			correct = append(correct, ok)
			prec[pred] = append(prec[pred], ok)
			rec[truth] = append(rec[truth], ok)
			f1[pred] = append(f1[pred], ok)
			if pred != truth {
				f1[truth] = append(f1[truth], 0)
				f1n[truth]++
				f1n[pred]++
			} else {
				f1tp[pred]++
			}
			var sum float64
			for _, v := range row {
				sum += min(max(v, logEps), 1-logEps)
			}
			ll = append(ll, -math.Log(min(max(row[truth], logEps), 1-logEps)/sum))
		}
		one(Accuracy, correct)
		one(LogLoss, ll)
		var pc, rc, fc, ac []Component
		yk := make([]float64, n)
		for c := range k {
			if len(prec[c]) == 0 && len(rec[c]) == 0 {
				continue
			}
			pc = append(pc, component(prec[c], n, OverPredicted, c))
			rc = append(rc, component(rec[c], n, OverActual, c))
			fc = append(fc, f1Component(f1[c], n, c, f1tp[c], f1n[c]))
			for i := range n {
				yk[i] = b2f(int(labels[i]) == c)
			}
			ac = append(ac, placements(scores[c:], yk, k, c)...)
		}
		scale := 1 / float64(max(len(pc), 1))
		out[Precision] = StdErr{Components: pc, Scale: scale}
		out[Recall] = StdErr{Components: rc, Scale: scale}
		out[F1] = StdErr{Components: fc, Scale: scale}
		out[AUC] = StdErr{Components: ac, Scale: 1 / float64(k)}
	default:
		var ae, se, ape []float64
		for i, p := range scores {
			d := labels[i] - p
			ae = append(ae, math.Abs(d))
			se = append(se, d*d)
			ape = append(ape, math.Abs(d)/max(math.Abs(labels[i]), logEps))
		}
		one(MAE, ae)
		one(MAPE, ape)
		mse, sd := meanStd(se)
		if mse > 0 {
			// The delta method: RMSE = √MSE, so SE(RMSE) ≈ SE(MSE)/(2·RMSE).
			out[RMSE] = StdErr{Components: []Component{{Sigma: sd / (2 * math.Sqrt(mse)), Share: 1, Over: OverAll}}, Scale: 1}
		}
	}
	return out
}

// f1Component: F1 = 2TP/(2TP+FP+FN) is the mean of x (1 for a true
// positive, 0 for a false one either way) over TP+FP+FN rows, times
// (TP+FP+FN)/(TP+(FP+FN)/2); the factor scales σ.
func f1Component(x []float64, all, class int, tp, fpfn float64) Component {
	c := component(x, all, OverConfusion, class)
	if d := tp + fpfn/2; d > 0 {
		c.Sigma *= float64(len(x)) / d
	}
	return c
}

// placements are DeLong's components of AUC's variance: each positive's
// share of negatives scored below it (ties half) and each negative's share
// of positives scored above it.
func placements(s, y []float64, stride, class int) []Component {
	n := len(y)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmpFloat(s[int(a)*stride], s[int(b)*stride]) })
	var pos, neg float64
	for _, v := range y {
		if v == 1 {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return nil
	}
	var v10, v01 []float64
	var negBelow, posBelow float64
	for i := 0; i < n; {
		j := i
		var gp, gn float64
		for ; j < n && s[int(order[j])*stride] == s[int(order[i])*stride]; j++ {
			if y[order[j]] == 1 {
				gp++
			} else {
				gn++
			}
		}
		for range int(gp) {
			v10 = append(v10, (negBelow+gn/2)/neg)
		}
		for range int(gn) {
			v01 = append(v01, (pos-posBelow-gp+gp/2)/pos)
		}
		negBelow += gn
		posBelow += gp
		i = j
	}
	return []Component{component(v10, n, OverActual, class), component(v01, n, OverRest, class)}
}

package stats

import "math"

// ChiSquare2xK is Pearson's chi-square test of homogeneity on the 2×K table
// whose rows are a and b (counts per category), as
// scipy.stats.chi2_contingency(table, correction=False) computes it: the
// expected count of a cell is its row total times its column total over the
// grand total, the statistic sums (observed-expected)²/expected, and the
// p-value is the chi-square survival function with K-1 degrees of freedom.
// Columns empty in both rows are left out first (SciPy refuses a zero
// expected count); with fewer than two columns left the samples cannot
// differ: statistic 0, p-value 1, 0 degrees of freedom.
func ChiSquare2xK(a, b []float64) (stat, p float64, dof int) {
	var ra, rb float64
	k := 0
	for i := range a {
		if a[i]+b[i] > 0 {
			k++
			ra += a[i]
			rb += b[i]
		}
	}
	if k < 2 || ra == 0 || rb == 0 {
		return 0, 1, max(k-1, 0)
	}
	total := ra + rb
	for i := range a {
		c := a[i] + b[i]
		if c == 0 {
			continue
		}
		ea, eb := ra*c/total, rb*c/total
		stat += (a[i]-ea)*(a[i]-ea)/ea + (b[i]-eb)*(b[i]-eb)/eb
	}
	dof = k - 1
	return stat, ChiSquareSF(stat, dof), dof
}

// ChiSquareSF is the survival function of the chi-square distribution with
// dof degrees of freedom: the regularized upper incomplete gamma function
// Q(dof/2, x/2).
func ChiSquareSF(x float64, dof int) float64 {
	if dof <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(dof)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function, by its power
// series below a+1 and by Lentz's continued fraction above, where each
// converges fast.
func gammaQ(a, x float64) float64 {
	const eps = 1e-16
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		sum, del, ap := 1/a, 1/a, a
		for range 10000 {
			ap++
			del *= x / ap
			sum += del
			if math.Abs(del) < math.Abs(sum)*eps {
				break
			}
		}
		return clip01(1 - sum*front)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return clip01(front * h)
}

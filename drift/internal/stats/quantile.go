package stats

import "math"

// Quantile returns the q-quantile of sorted data by linear interpolation
// between order statistics (Hyndman and Fan's type 7), with the same
// floating-point steps as numpy.quantile's default method, so that bin
// edges built from the same reference agree bit for bit.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	vi := float64(n-1) * q
	if vi >= float64(n-1) {
		return sorted[n-1]
	}
	if vi < 0 {
		return sorted[0]
	}
	lo := math.Floor(vi)
	a, b := sorted[int(lo)], sorted[int(lo)+1]
	t := vi - lo
	d := b - a
	// The conversions round each product, as NumPy does, where Go could
	// otherwise fuse a multiply and an add.
	if t >= 0.5 {
		return b - float64(d*(1-t))
	}
	return a + float64(d*t)
}

package stats

import (
	"math"
)

// This file computes the survival function of the two-sided one-sample
// Kolmogorov–Smirnov statistic, P(D_n >= x), as scipy.stats.kstwo.sf does
// (scipy/stats/_ksstats.py): Simard and L'Ecuyer's choice among Ruben–
// Gambino's closed forms, the Durbin matrix (Marsaglia–Tsang–Wang), the
// Pomeranz recursion, the Pelz–Good asymptotic series and twice the exact
// one-sided Smirnov probability. ks_2samp uses it for large samples.

const (
	e128   = 128
	minLog = -708.3964185322641 // log of the smallest normal double, cephes' MINLOG
)

var (
	ep128 = math.Ldexp(1, e128)
	em128 = math.Ldexp(1, -e128)
)

// KolmogorovSF returns P(D_n >= x) for the two-sided one-sample KS
// statistic of a sample of size n.
func KolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 { // Ruben–Gambino: 1/2n <= x <= 1/n
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			cdf = 1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) * (1.0 / fn) * (2*t - 1)
			}
		} else {
			cdf = math.Exp(logFactorialOverPower(n) + fn*math.Log(2*t-1))
		}
		return clip01(1 - cdf)
	}
	if t >= fn-1 { // Ruben–Gambino
		return clip01(2 * math.Pow(1-x, fn))
	}
	if x >= 0.5 { // exact: twice the one-sided probability
		return clip01(2 * SmirnovSF(n, x))
	}
	nxx := t * x
	if n <= 140 {
		switch {
		case nxx <= 0.754693:
			return clip01(1 - durbinCDF(n, x))
		case nxx <= 4:
			return clip01(1 - pomeranzCDF(n, x))
		}
		return clip01(2 * SmirnovSF(n, x))
	}
	// The survival function has its own cut-offs (Simard–L'Ecuyer).
	if nxx >= 370 {
		return 0
	}
	if nxx >= 2.2 {
		return clip01(2 * SmirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nxx >= 18:
		cdf = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		cdf = durbinCDF(n, x)
	default:
		cdf = pelzGoodCDF(n, x)
	}
	return clip01(1 - clip01(cdf))
}

// stirling holds B_{2j}/(2j)/(2j-1) for j = 8..1, for logFactorialOverPower.
var stirling = []float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2}

// logFactorialOverPower is log(n!/n^n) by Stirling's series, with n log n
// removed up front so nothing cancels.
func logFactorialOverPower(n int) float64 {
	fn := float64(n)
	rn := 1 / fn
	return math.Log(fn)/2 - fn + math.Log(2*math.Pi)/2 + rn*polyval(stirling, rn/fn)
}

func polyval(c []float64, x float64) float64 {
	var y float64
	for _, v := range c {
		y = y*x + v
	}
	return y
}

// durbinCDF is P(D_n <= d) by Durbin's matrix method as Marsaglia, Tsang and
// Wang evaluate it: the k-th diagonal element of H^n times n!/n^n, with
// scaling by 2^128 to stay in range.
func durbinCDF(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	H := newMatrix(m)
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-(i-1)])
		}
	}
	for r := 0; r < m; r++ {
		H.set(r, 0, v[r])
	}
	for c := 0; c < m; c++ {
		H.set(m-1, c, v[m-1-c])
	}

	pw := identity(m)
	expnt, hexpnt := 0, 0
	tmp := newMatrix(m)
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			matmul(tmp, pw, H)
			pw, tmp = tmp, pw
			expnt += hexpnt
		}
		matmul(tmp, H, H)
		H, tmp = tmp, H
		hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			H.scale(1 / ep128)
			hexpnt += e128
		}
	}
	p := pw.at(k-1, k-1)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / float64(n)
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= e128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

type matrix struct {
	n int
	a []float64
}

func newMatrix(n int) matrix { return matrix{n, make([]float64, n*n)} }

func identity(n int) matrix {
	m := newMatrix(n)
	for i := range n {
		m.a[i*n+i] = 1
	}
	return m
}

func (m matrix) at(r, c int) float64     { return m.a[r*m.n+c] }
func (m matrix) set(r, c int, v float64) { m.a[r*m.n+c] = v }

func (m matrix) scale(f float64) {
	for i := range m.a {
		m.a[i] *= f
	}
}

// matmul sets dst = a·b; dst must not alias a or b.
func matmul(dst, a, b matrix) {
	n := a.n
	for i := range dst.a {
		dst.a[i] = 0
	}
	for i := 0; i < n; i++ {
		row := dst.a[i*n : (i+1)*n]
		for k := 0; k < n; k++ {
			aik := a.a[i*n+k]
			if aik == 0 {
				continue
			}
			bk := b.a[k*n : (k+1)*n]
			for j, bv := range bk {
				row[j] += aik * bv
			}
		}
	}
}

// pomeranzJ1J2 is the interval of non-zero entries of row i of Pomeranz's
// recursion.
func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		if ip1mod2 == 0 { // i is odd
			if ip1div2 == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
			}
		} else {
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// pomeranzCDF is P(D_n <= x) by Pomeranz's recursion: each row is the
// previous one convolved with Poisson-like weights; only two rows and their
// non-zero stretches are kept, scaled to avoid underflow.
func pomeranzCDF(n int, x float64) float64 {
	fn := float64(n)
	t := fn * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpower := make([]float64, npwrs)
	twogpower := make([]float64, npwrs)
	onem2gpower := make([]float64, npwrs)
	gpower[0], twogpower[0], onem2gpower[0] = 1, 1, 1
	expnt := 0
	gn, g2n, g12n := g/fn, 2*g/fn, (1-2*g)/fn
	for m := 1; m < npwrs; m++ {
		gpower[m] = gpower[m-1] * gn / float64(m)
		twogpower[m] = twogpower[m-1] * g2n / float64(m)
		onem2gpower[m] = onem2gpower[m-1] * g12n / float64(m)
	}
	V0 := make([]float64, npwrs)
	V1 := make([]float64, npwrs)
	V1[0] = 1
	V0s, V1s := 0, 0
	conv := make([]float64, 2*npwrs)
	j1, _ := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		V0, V1 = V1, V0
		V0s, V1s = V1s, V0s
		clear(V1)
		var j2 int
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		var pwrs []float64
		switch {
		case i == 1 || i == 2*n+1:
			pwrs = gpower
		case i%2 == 1:
			pwrs = twogpower
		default:
			pwrs = onem2gpower
		}
		ln2 := j2 - k1 + 1
		if ln2 > 0 {
			a := V0[k1-V0s : k1-V0s+ln2]
			b := pwrs[:ln2]
			c := conv[:2*ln2-1]
			clear(c)
			for p, av := range a {
				if av == 0 {
					continue
				}
				for q, bv := range b {
					c[p+q] += av * bv
				}
			}
			start, length := j1-k1, j2-j1+1
			copy(V1[:length], c[start:start+length])
			var mx float64
			for _, v := range V1 {
				mx = max(mx, v)
			}
			if 0 < mx && mx < em128 {
				for q := range V1 {
					V1[q] *= ep128
				}
				expnt -= e128
			}
			V1s = V0s + j1 - k1
		}
	}
	ans := V1[n-V1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ep128 {
			ans *= em128
			expnt += e128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// pelzGoodCDF is Pelz and Good's approximation of P(D_n <= x): the
// Li-Chien–Korolyuk expansion in powers of 1/sqrt(n), each term transformed
// with Jacobi theta identities into a series that converges for small z.
func pelzGoodCDF(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	const (
		pi2 = math.Pi * math.Pi
		pi4 = pi2 * pi2
		pi6 = pi4 * pi2
	)
	sqrt2pi := math.Sqrt(2 * math.Pi)
	fn := float64(n)
	z := math.Sqrt(fn) * x
	z2, z3, z4, z6 := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)
	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	k1a, k1b := -z2, pi2/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)

	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, math.Pow(m, 4), math.Pow(m, 6)
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	div := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / div[i]
	}
	q = math.Exp(-pi2 / 2 / z2)
	var k2extra, k3extra float64
	sqrt3z := math.Sqrt(3) * z
	for k := maxk; k > 0; k-- {
		fk := float64(k)
		ks := fk * fk
		qp := math.Pow(q, ks)
		kspi := math.Pi * fk
		k2extra += ks * qp
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks * qp
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	var sum float64
	for i := range K {
		sum += K[i] / math.Pow(fn, float64(i)/2)
	}
	return sum
}

// SmirnovSF is P(D+_n >= x), the exact one-sided KS survival function, by
// the Birnbaum–Tingey sum as scipy.special.smirnov evaluates it (terms in
// logarithms here instead of double-double arithmetic; stopped when the
// remaining terms cannot matter), and by Miller's approximation above a
// million.
func SmirnovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) || x < 0 || x > 1 {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	fn := float64(n)
	nx := fn * x
	nxfl := math.Floor(nx)
	alpha := nx - nxfl
	// The last index of the sum: floor(n(1-x)), less one when n(1-x) is
	// whole, as that term's base 1-x-j/n is 0.
	n1mxfl := n - int(nxfl) - 1
	if nxfl == 0 || (nxfl == 1 && alpha == 0) { // x <= 1/n
		return clip01(1 - x*math.Pow(1+x, fn-1))
	}
	if -2*fn*x*x < minLog {
		return 0
	}
	if int(nxfl) >= n-1 {
		return clip01(math.Pow(1-x, fn))
	}
	if n > 1000000 {
		logp := -math.Pow(6*nx+1, 2) / 18 / fn
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 + math.Expm1(logp)
	}
	nTerms := n1mxfl + 1
	// A_j = C(n,j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j); P = x * sum A_j.
	sum := math.Pow(1-x, fn) / x // A_0
	logC := 0.0
	for j := 1; j < nTerms; j++ {
		logC += math.Log(float64(n-j+1)) - math.Log(float64(j))
		t2 := float64(n-j)/fn - x
		t1 := float64(j)/fn + x
		if t2 <= 0 {
			break
		}
		a := math.Exp(logC + float64(j-1)*math.Log(t1) + float64(n-j)*math.Log(t2))
		sum += a
		if a != 0 {
			if 4*float64(nTerms-j)*a < 2.220446049250313e-16*sum && j != nTerms-1 {
				break
			}
		} else if j > n/2 {
			break
		}
	}
	return clip01(x * sum)
}

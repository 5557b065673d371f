package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
)

// The golden values come from SciPy (drift/testdata/golden/gen.py).
const tol = 1e-6

type sampleSpec struct {
	Values []float64 `json:"values"`
	Kind   string    `json:"kind"`
	N      int       `json:"n"`
	Seed   uint64    `json:"seed"`
	Loc    float64   `json:"loc"`
	Scale  *float64  `json:"scale"`
	K      float64   `json:"k"`
}

type golden struct {
	KS []struct {
		Name      string
		X, Y      sampleSpec
		Statistic float64
		PValue    float64
	}
	KSTwo []struct {
		N     int
		X, SF float64
	}
	Smirnov []struct {
		N     int
		X, SF float64
	}
	KSPValue []struct {
		N1, N2    int
		D         float64
		PValue    float64
		Statistic float64
	} `json:"ks_pvalue"`
	Chi2 []struct {
		A, B      []float64
		Statistic float64
		PValue    float64
		DOF       int
		X         float64
		SF        float64
	}
	Distance []struct {
		A, B                     []float64
		PSI, JS, Hellinger, LInf float64
	}
	Wasserstein []struct {
		U, V   sampleSpec
		UW, VW []float64
		W, Std float64
	}
	Correction []struct {
		P, Bonferroni, BH []float64
	}
	Quantile []struct {
		X sampleSpec
		Q []float64
	}
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("../../testdata/golden/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// sample regenerates gen.py's sample(): the same LCG and the same IEEE
// operations in the same order, so the doubles are identical.
func sample(s sampleSpec) []float64 {
	if s.Values != nil {
		return s.Values
	}
	scale := 1.0
	if s.Scale != nil {
		scale = *s.Scale
	}
	state := s.Seed
	next := func() float64 {
		state = state*6364136223846793005 + 1442695040888963407
		return float64(state>>11) * 0x1p-53
	}
	out := make([]float64, s.N)
	for i := range out {
		switch s.Kind {
		case "uniform":
			out[i] = s.Loc + float64(scale*next())
		case "normal":
			z := 0.0
			for range 12 {
				z += next()
			}
			out[i] = s.Loc + float64(scale*(z-6))
		case "int":
			out[i] = s.Loc + float64(scale*math.Floor(float64(s.K*next())))
		default:
			panic("unknown kind " + s.Kind)
		}
	}
	return out
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.17g, want %.17g (diff %.3g)", what, got, want, got-want)
	}
}

func TestGoldenKS(t *testing.T) {
	for _, c := range loadGolden(t).KS {
		t.Run(c.Name, func(t *testing.T) {
			x, y := slices.Sorted(slices.Values(sample(c.X))), slices.Sorted(slices.Values(sample(c.Y)))
			d := KS2Sorted(x, y)
			p, d := KSPValue(d, len(x), len(y))
			near(t, "statistic", d, c.Statistic, 1e-12)
			near(t, "p-value", p, c.PValue, tol)
		})
	}
}

func TestGoldenKolmogorov(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.KSTwo {
		near(t, fmt.Sprintf("kstwo.sf(%g, %d)", c.X, c.N), KolmogorovSF(c.N, c.X), c.SF, tol)
	}
	for _, c := range g.Smirnov {
		near(t, fmt.Sprintf("smirnov(%d, %g)", c.N, c.X), SmirnovSF(c.N, c.X), c.SF, tol)
	}
	for _, c := range g.KSPValue {
		p, d := KSPValue(c.D, c.N1, c.N2)
		near(t, fmt.Sprintf("p(d=%g, %d, %d)", c.D, c.N1, c.N2), p, c.PValue, tol)
		near(t, fmt.Sprintf("statistic(d=%g, %d, %d)", c.D, c.N1, c.N2), d, c.Statistic, 1e-12)
	}
}

func TestGoldenChiSquare(t *testing.T) {
	for _, c := range loadGolden(t).Chi2 {
		if c.A == nil {
			near(t, fmt.Sprintf("chi2.sf(%g, %d)", c.X, c.DOF), ChiSquareSF(c.X, c.DOF), c.SF, tol)
			continue
		}
		stat, p, dof := ChiSquare2xK(c.A, c.B)
		near(t, fmt.Sprintf("chi2 %v %v", c.A, c.B), stat, c.Statistic, tol*max(1, c.Statistic))
		near(t, fmt.Sprintf("chi2 p %v %v", c.A, c.B), p, c.PValue, tol)
		if dof != c.DOF {
			t.Errorf("dof %v %v = %d, want %d", c.A, c.B, dof, c.DOF)
		}
	}
}

func TestGoldenDistances(t *testing.T) {
	for _, c := range loadGolden(t).Distance {
		what := fmt.Sprintf("%v vs %v", c.A, c.B)
		near(t, "PSI "+what, PSI(c.A, c.B), c.PSI, tol)
		near(t, "JS "+what, JensenShannon(c.A, c.B), c.JS, tol)
		near(t, "Hellinger "+what, Hellinger(c.A, c.B), c.Hellinger, tol)
		near(t, "LInf "+what, LInf(c.A, c.B), c.LInf, tol)
	}
}

func TestGoldenWasserstein(t *testing.T) {
	for _, c := range loadGolden(t).Wasserstein {
		u, v := sample(c.U), sample(c.V)
		near(t, fmt.Sprintf("W1 %d vs %d", len(u), len(v)), Wasserstein(u, c.UW, v, c.VW), c.W, tol)
	}
}

func TestGoldenCorrections(t *testing.T) {
	for _, c := range loadGolden(t).Correction {
		b, bh := Bonferroni(c.P), BenjaminiHochberg(c.P)
		for i := range c.P {
			near(t, fmt.Sprintf("Bonferroni %v [%d]", c.P, i), b[i], c.Bonferroni[i], 1e-12)
			near(t, fmt.Sprintf("BH %v [%d]", c.P, i), bh[i], c.BH[i], 1e-12)
		}
	}
}

func TestGoldenQuantiles(t *testing.T) {
	for _, c := range loadGolden(t).Quantile {
		x := slices.Sorted(slices.Values(sample(c.X)))
		for k, want := range c.Q {
			if got := Quantile(x, float64(k)/100); got != want {
				t.Errorf("quantile %d/100 of %d values = %.17g, want %.17g exactly", k, len(x), got, want)
			}
		}
	}
}

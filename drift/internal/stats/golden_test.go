package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/servekit/servekit/drift/internal/golden"
)

// The golden values come from SciPy (drift/testdata/golden/gen.py).
const tol = 1e-6

type goldenFile struct {
	KS []struct {
		Name      string
		X, Y      golden.Spec
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
		U, V   golden.Spec
		UW, VW []float64
		W, Std float64
	}
	Correction []struct {
		P, Bonferroni, BH []float64
	}
	Quantile []struct {
		X golden.Spec
		Q []float64
	}
}

func loadGolden(t *testing.T) goldenFile {
	t.Helper()
	b, err := os.ReadFile("../../testdata/golden/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
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
			x, y := slices.Sorted(slices.Values(c.X.Sample())), slices.Sorted(slices.Values(c.Y.Sample()))
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
		u, v := c.U.Sample(), c.V.Sample()
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
		x := slices.Sorted(slices.Values(c.X.Sample()))
		for k, want := range c.Q {
			if got := Quantile(x, float64(k)/100); got != want {
				t.Errorf("quantile %d/100 of %d values = %.17g, want %.17g exactly", k, len(x), got, want)
			}
		}
	}
}

package drift

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The table lookup agrees with the plain binary search everywhere: on the
// edges, between them, outside them, with ties and tiny and huge ranges.
func TestBinnerAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sets := [][]float64{{1}, {1, 2}, {-1e300, 1e300}, {0, 5e-324, 1e-323}, {1, 1.0000000000000002, 3}}
	for range 200 {
		n := 2 + r.IntN(200)
		e := make([]float64, n)
		for i := range e {
			switch r.IntN(3) {
			case 0:
				e[i] = r.NormFloat64()
			case 1:
				e[i] = math.Exp(r.NormFloat64() * 5)
			default:
				e[i] = float64(r.IntN(10))
			}
		}
		slices.Sort(e)
		sets = append(sets, slices.Compact(e))
	}
	for _, e := range sets {
		b := newBinner(e)
		probe := func(v float64) {
			if got, want := b.bin(v), binOf(e, v); got != want {
				t.Fatalf("edges %v: bin(%v) = %d, want %d", e, v, got, want)
			}
		}
		for _, x := range e {
			probe(x)
			probe(math.Nextafter(x, math.Inf(1)))
			probe(math.Nextafter(x, math.Inf(-1)))
		}
		for range 500 {
			probe(e[0] + (e[len(e)-1]-e[0])*(r.Float64()*1.2-0.1))
		}
		probe(math.Inf(1))
		probe(math.Inf(-1))
		probe(math.MaxFloat64)
	}
}

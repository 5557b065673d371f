// Package golden regenerates the samples that drift/testdata/golden/gen.py
// describes, so the golden tests feed Go the very doubles SciPy saw.
package golden

import "math"

// Spec describes a sample as gen.py's sample() does: explicit values, or a
// kind drawn from a 64-bit LCG whose uniforms are exact doubles.
type Spec struct {
	Values []float64 `json:"values"`
	Kind   string    `json:"kind"`
	N      int       `json:"n"`
	Seed   uint64    `json:"seed"`
	Loc    float64   `json:"loc"`
	Scale  *float64  `json:"scale"`
	K      float64   `json:"k"`
}

// Sample returns the sample: the same LCG and the same IEEE operations in
// the same order as gen.py (the conversions keep Go from fusing a multiply
// and an add), so the doubles are identical. It panics on an unknown kind,
// a broken golden file.
func (s Spec) Sample() []float64 {
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
		case "normal": // Irwin–Hall: 12 uniforms, less 6
			z := 0.0
			for range 12 {
				z += next()
			}
			out[i] = s.Loc + float64(scale*(z-6))
		case "int":
			out[i] = s.Loc + float64(scale*math.Floor(float64(s.K*next())))
		default:
			panic("golden: unknown sample kind " + s.Kind)
		}
	}
	return out
}

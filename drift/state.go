package drift

import "math"

// FeatureState is one feature's part of a window: what its statistics
// need, in memory fixed by the profile and the exact limit, whatever the
// traffic. States of the same profile merge exactly (Merge), which is how
// replicas' windows combine.
type FeatureState struct {
	Name string `json:"name"`
	// N counts the values that enter the statistics; Missing the NaN and
	// infinite numerical values left out.
	N       int64 `json:"n"`
	Missing int64 `json:"missing"`
	// Min, Max and Sum of the values (numerical; meaningful when N > 0).
	Min float64 `json:"min,omitempty"`
	Max float64 `json:"max,omitempty"`
	Sum float64 `json:"sum,omitempty"`
	// Counts per fine bin (numerical) or per category and "other"
	// (categorical); Sums per fine bin.
	Counts []int64   `json:"counts"`
	Sums   []float64 `json:"sums,omitempty"`
	// Values holds the values themselves, in arrival order, while N is at
	// most the exact limit; Overflow says there were more and none are kept.
	Values   []float64 `json:"values,omitempty"`
	Overflow bool      `json:"overflow,omitempty"`
}

func newFeatureState(fp *FeatureProfile) FeatureState {
	s := FeatureState{Name: fp.Name, Counts: make([]int64, len(fp.Counts))}
	if fp.Kind == Numerical {
		s.Sums = make([]float64, len(fp.Counts))
	}
	return s
}

// addNumbers bins numerical values; it is the per-value hot loop.
func (s *FeatureState) addNumbers(bins *binner, vals []float64, limit int) {
	for _, v := range vals {
		if v != v || math.IsInf(v, 0) {
			s.Missing++
			continue
		}
		b := bins.bin(v)
		s.Counts[b]++
		s.Sums[b] += v
		if s.N == 0 {
			s.Min, s.Max = v, v
		} else if v < s.Min {
			s.Min = v
		} else if v > s.Max {
			s.Max = v
		}
		s.N++
		s.Sum += v
		if !s.Overflow {
			if len(s.Values) < limit {
				s.Values = append(s.Values, v)
			} else {
				s.Overflow = true
				s.Values = s.Values[:0]
			}
		}
	}
}

func (s *FeatureState) addIndices(idx []int32) {
	for _, i := range idx {
		s.Counts[i]++
	}
	s.N += int64(len(idx))
}

// merge adds o into s; both are states of the same feature of one profile.
func (s *FeatureState) merge(o *FeatureState, limit int) {
	for i, c := range o.Counts {
		s.Counts[i] += c
	}
	for i, v := range o.Sums {
		s.Sums[i] += v
	}
	if o.N > 0 {
		if s.N == 0 {
			s.Min, s.Max = o.Min, o.Max
		} else {
			s.Min, s.Max = min(s.Min, o.Min), max(s.Max, o.Max)
		}
	}
	s.N += o.N
	s.Missing += o.Missing
	s.Sum += o.Sum
	// Values survive only while the merged window is within the limit, so
	// whether a window is exact depends on its total alone, never on how it
	// was split among replicas or panes.
	switch {
	case s.Overflow:
	case o.Overflow || len(s.Values)+len(o.Values) > limit:
		s.Overflow = true
		s.Values = s.Values[:0]
	default:
		s.Values = append(s.Values, o.Values...)
	}
}

func (s *FeatureState) reset() {
	clear(s.Counts)
	clear(s.Sums)
	s.N, s.Missing, s.Min, s.Max, s.Sum = 0, 0, 0, 0, 0
	s.Values, s.Overflow = s.Values[:0], false
}

func (s *FeatureState) clone() FeatureState {
	c := *s
	c.Counts = append([]int64(nil), s.Counts...)
	if s.Sums != nil {
		c.Sums = append([]float64(nil), s.Sums...)
	}
	c.Values = append([]float64(nil), s.Values...)
	return c
}

// stateBytes is the most memory one feature's state of one pane holds: the
// fixed bins plus the values kept up to the exact limit.
func stateBytes(fp *FeatureProfile, limit int) int {
	const header = 160 // the struct and three slice headers
	n := header + 8*len(fp.Counts)
	if fp.Kind == Numerical {
		n += 8*len(fp.Counts) + 8*limit
	}
	return n
}

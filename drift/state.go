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
	// Data quality. NaN, Inf and Mismatched (text that is not a number)
	// split Missing by cause; Below and Above count the finite values
	// outside the reference's range (Above is also the last bin's count);
	// Unseen the categories the reference never had (in "other" too).
	NaN        int64 `json:"nan,omitempty"`
	Inf        int64 `json:"inf,omitempty"`
	Mismatched int64 `json:"mismatched,omitempty"`
	Below      int64 `json:"below,omitempty"`
	Above      int64 `json:"above,omitempty"`
	Unseen     int64 `json:"unseen,omitempty"`
}

// mismatchBits is the NaN the extractors write for a value of the wrong
// type (text that does not parse as a number): a quiet NaN with a payload
// of its own, so the worker can tell it from a NaN the request sent.
const mismatchBits = 0x7ff8_0000_0000_0bad

var mismatch = math.Float64frombits(mismatchBits)

func newFeatureState(fp *FeatureProfile) FeatureState {
	s := FeatureState{Name: fp.Name, Counts: make([]int64, len(fp.Counts))}
	if fp.Kind == Numerical {
		s.Sums = make([]float64, len(fp.Counts))
	}
	return s
}

// addNumbers bins numerical values; it is the per-value hot loop.
func (s *FeatureState) addNumbers(bins *binner, vals []float64, limit int) {
	last := len(s.Counts) - 1
	lo := bins.edges[0]
	for _, v := range vals {
		if v != v || math.IsInf(v, 0) {
			s.Missing++
			switch {
			case v != v && math.Float64bits(v) == mismatchBits:
				s.Mismatched++
			case v != v:
				s.NaN++
			default:
				s.Inf++
			}
			continue
		}
		b := bins.bin(v)
		if b == 0 && v < lo {
			s.Below++
		} else if b == last {
			s.Above++
		}
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

// addIndices counts categories; an index one past "other" is a category
// the reference never had: it counts in "other" and as Unseen.
func (s *FeatureState) addIndices(idx []int32) {
	unseen := int32(len(s.Counts))
	for _, i := range idx {
		if i == unseen {
			s.Unseen++
			i--
		}
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
	s.NaN += o.NaN
	s.Inf += o.Inf
	s.Mismatched += o.Mismatched
	s.Below += o.Below
	s.Above += o.Above
	s.Unseen += o.Unseen
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
	s.NaN, s.Inf, s.Mismatched, s.Below, s.Above, s.Unseen = 0, 0, 0, 0, 0, 0
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

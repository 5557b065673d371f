package stats

import "sort"

// Bonferroni adjusts p-values for m simultaneous tests: each times m, at
// most 1. Comparing them with alpha bounds the chance of any false alarm
// among the m (the family-wise error rate) by alpha.
func Bonferroni(ps []float64) []float64 {
	m := float64(len(ps))
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = min(p*m, 1)
	}
	return out
}

// BenjaminiHochberg adjusts p-values so that comparing them with alpha
// bounds the expected share of false alarms among the alarms (the false
// discovery rate) by alpha, as scipy.stats.false_discovery_control(ps,
// method="bh") does: sorted ascending, p_(i)·m/i, then the running minimum
// from the largest down, at most 1.
func BenjaminiHochberg(ps []float64) []float64 {
	m := len(ps)
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ps[idx[a]] < ps[idx[b]] })
	out := make([]float64, m)
	run := 1.0
	for r := m - 1; r >= 0; r-- {
		adj := ps[idx[r]] * float64(m) / float64(r+1)
		run = min(run, adj)
		out[idx[r]] = run
	}
	return out
}

package observe

import (
	"cmp"
	"slices"
)

// Key names a model version, the unit the monitors publish by.
type Key struct{ Model, Version string }

// SortedKeys lists m's keys by model, then version, as the monitors'
// reports and metrics list them.
func SortedKeys[V any](m map[Key]V) []Key {
	ks := make([]Key, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Version, b.Version))
	})
	return ks
}

// AppendBounded appends v to s, oldest first, dropping the oldest so that
// s holds at most limit values: the monitors' bounded histories.
func AppendBounded[T any](s []T, v T, limit int) []T {
	if len(s) >= limit {
		copy(s, s[1:])
		s = s[:len(s)-1]
	}
	return append(s, v)
}

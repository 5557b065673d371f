package rollout

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
)

// Weights are kept in units of 0.1 %, so an assignment is exact integer
// arithmetic: the units of all versions sum to total, and a key's point is
// one of total cells.
const total = 1000

// assignment maps versions to their units; versions absent have none. It is
// never modified once built.
type assignment map[string]int32

// percent converts units to a percentage.
func percent(u int32) float64 { return float64(u) / 10 }

// toUnits converts weights in percent to units, rejecting what would be
// silently rounded: a negative weight, one above 100, one finer than 0.1 %,
// or a sum other than 100.
func toUnits(model string, w map[string]float64) (assignment, error) {
	a := make(assignment, len(w))
	var sum int64
	for v, pct := range w {
		u := math.Round(pct * 10)
		switch {
		case math.IsNaN(pct) || pct < 0 || pct > 100:
			return nil, serving.Errorf(serving.InvalidArgument, "rollout: model %q: weight %v for version %q is not in [0, 100]", model, pct, v)
		case math.Abs(pct*10-u) > 1e-6:
			return nil, serving.Errorf(serving.InvalidArgument, "rollout: model %q: weight %v for version %q is finer than 0.1%%", model, pct, v)
		}
		if u > 0 {
			a[v] = int32(u)
			sum += int64(u)
		}
	}
	if sum != total {
		return nil, serving.Errorf(serving.InvalidArgument, "rollout: model %q: weights sum to %v%%, want 100%%", model, percent(int32(sum)))
	}
	return a, nil
}

// point maps a routing key to one of total cells: FNV-1a (64 bit) over the
// model name, a zero byte and the key, then the SplitMix64 finaliser, whose
// avalanche spreads keys that differ in one character (user-41, user-42)
// over the whole range; the top bits of hash×total pick the cell. The
// function is fixed: every replica, and every restart, puts a key on the
// same cell. The model name is mixed in so that one user is not the canary
// of every model at once.
func point(model, key string) int32 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(model); i++ {
		h = (h ^ uint64(model[i])) * prime
	}
	h *= prime // the zero byte: h ^ 0 == h
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	hi, _ := bits.Mul64(h, total)
	return int32(hi)
}

// randomPoint is a point for a request without a key.
func randomPoint(u uint64) int32 {
	hi, _ := bits.Mul64(u, total)
	return int32(hi)
}

// compareVersions is the order in which versions own ranges of cells:
// versions that are decimal numbers first, by value ("2" before "10"),
// then the others by bytes; equal numbers ("01", "1") by bytes. It depends
// on the names alone, not on the order versions were added, so replicas
// that loaded versions in a different order still agree on every key.
func compareVersions(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// checkVersion rejects names that would be ambiguous in a URL path, a
// metric label or a log line.
func checkVersion(model, v string) error {
	bad := v == "" || len(v) > 256 || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool {
		return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	})
	if bad {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: invalid version name %q (want 1-256 bytes of UTF-8 without '/', spaces or control characters)", model, v)
	}
	return nil
}

// equal reports whether two assignments give every version the same units.
func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for v, u := range a {
		if b[v] != u {
			return false
		}
	}
	return true
}

// percents converts a to percent, for Status and errors.
func (a assignment) percents() map[string]float64 {
	m := make(map[string]float64, len(a))
	for v, u := range a {
		m[v] = percent(u)
	}
	return m
}

// heaviest returns the version with the most units other than skip (ties:
// the first in version order), or "".
func (a assignment) heaviest(skip string) string {
	var best string
	for v, u := range a {
		if v == skip || u == 0 {
			continue
		}
		if best == "" || u > a[best] || u == a[best] && compareVersions(v, best) < 0 {
			best = v
		}
	}
	return best
}

// sortedVersions returns the versions of a in version order.
func (a assignment) sortedVersions() []string {
	vs := make([]string, 0, len(a))
	for v := range a {
		vs = append(vs, v)
	}
	slices.SortFunc(vs, compareVersions)
	return vs
}

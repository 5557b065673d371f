package loadtest

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Histogram is a Prometheus histogram read from /metrics: cumulative
// counts by upper bound, summed over the series whose labels matched.
type Histogram map[float64]float64

// Histogram scrapes the buckets of histogram name (without _bucket) whose
// label text contains every one of match.
func (s *Server) Histogram(name string, match ...string) (Histogram, error) {
	resp, err := http.Get(s.Base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	h := Histogram{}
	for line := range bytes.Lines(b) {
		l := strings.TrimSpace(string(line))
		rest, ok := strings.CutPrefix(l, name+"_bucket{")
		if !ok || !containsAll(rest, match) {
			continue
		}
		_, leText, ok1 := strings.Cut(rest, `le="`)
		leText, _, ok2 := strings.Cut(leText, `"`)
		j := strings.LastIndexByte(rest, ' ')
		if !ok1 || !ok2 || j < 0 {
			continue
		}
		le, err1 := strconv.ParseFloat(leText, 64)
		v, err2 := strconv.ParseFloat(rest[j+1:], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		h[le] += v
	}
	return h, nil
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// Since is the histogram of what was recorded after before was read.
func (h Histogram) Since(before Histogram) Histogram {
	out := Histogram{}
	for le, v := range h {
		out[le] = v - before[le]
	}
	return out
}

// Count is the number of observations.
func (h Histogram) Count() float64 { return h[math.Inf(1)] }

// Quantile returns the upper bound of the bucket holding quantile q (0–1):
// the value is at most that. +Inf when it lies beyond the last bound.
func (h Histogram) Quantile(q float64) float64 {
	total := h.Count()
	if total == 0 {
		return 0
	}
	bounds := make([]float64, 0, len(h))
	for le := range h {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	for _, le := range bounds {
		if h[le] >= q*total {
			return le
		}
	}
	return math.Inf(1)
}

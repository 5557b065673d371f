package report

import (
	"math"
	"strconv"
	"strings"
)

// What the drift and quality parts draw alike: the template places these
// numbers, escaped; nothing is computed in it.

const (
	chartW    = 420.0 // a chart's width, both parts
	maxAlerts = 50    // alerts listed per part; the rest counted
)

// dot is a point of a line chart, with its hover text.
type dot struct {
	X, Y  float64
	Class string
	Title string
}

// label is an axis or chart label.
type label struct {
	X, Y   float64
	Text   string
	Anchor string
}

// fmtNum shows a number in at most four significant digits.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e-3 && math.Abs(v) < 1e5:
		s := strconv.FormatFloat(v, 'f', max(0, 3-int(math.Floor(math.Log10(math.Abs(v))))), 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

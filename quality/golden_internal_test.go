package quality

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

// golden is testdata/golden/metrics.json, written by gen.py with
// scikit-learn 1.2.1.
type golden struct {
	Cases []struct {
		Name      string
		Kind      Kind
		Threshold float64
		Classes   int
		Scores    []float64
		Labels    []float64
		Counts    *struct{ TP, FP, FN, TN float64 }
		Metrics   map[Metric]float64
	}
	Calibration []struct {
		Name     string
		Scores   []float64
		Labels   []float64
		Query    []float64
		Isotonic []float64
		Platt    struct {
			A, B, Objective float64
			Predict         []float64
		}
	}
	Delays struct {
		Values    []float64
		Quantiles map[string]float64
	}
}

func readGolden(t testing.TB) *golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden/metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 || len(g.Calibration) == 0 {
		t.Fatal("golden file without cases")
	}
	return &g
}

// tolerance: 1e-9 absolute (relative for values above 1), the bar the
// issue sets for AUC and log loss, for every metric.
func near(want, got float64) bool {
	return math.Abs(want-got) <= 1e-9*max(1, math.Abs(want))
}

// Every realized metric matches scikit-learn's on the golden inputs; the
// confusion counts exactly.
func TestGoldenMetrics(t *testing.T) {
	g := readGolden(t)
	var worst float64
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			task := Task{Kind: c.Kind, Output: "y", Threshold: c.Threshold, NumClasses: c.Classes}
			if err := task.normalize(); err != nil {
				t.Fatal(err)
			}
			got := realized(&task, c.Scores, c.Labels)
			for _, m := range task.metrics() {
				want, ok := c.Metrics[m]
				if !ok {
					t.Fatalf("golden lacks %s", m)
				}
				v, ok := got.get(m)
				if !ok {
					t.Errorf("%s: undefined, want %v", m, want)
					continue
				}
				worst = max(worst, math.Abs(v-want))
				if !near(want, v) {
					t.Errorf("%s = %.17g, scikit-learn %.17g (diff %.3g)", m, v, want, v-want)
				}
			}
			if c.Counts != nil {
				var cm confusion
				for i, s := range c.Scores {
					switch pred, pos := s >= c.Threshold, c.Labels[i] == 1; {
					case pred && pos:
						cm.tp++
					case pred:
						cm.fp++
					case pos:
						cm.fn++
					default:
						cm.tn++
					}
				}
				if cm != (confusion{c.Counts.TP, c.Counts.FP, c.Counts.FN, c.Counts.TN}) {
					t.Errorf("confusion %+v, scikit-learn %+v", cm, *c.Counts)
				}
			}
		})
	}
	t.Logf("largest difference from scikit-learn over all metrics: %.3g", worst)
}

// Isotonic calibration matches IsotonicRegression(out_of_bounds="clip");
// Platt's sigmoid reaches scikit-learn's optimum (BFGS stops within its
// gradient tolerance, Newton's method goes on to the optimum) and agrees
// on every probability within 1e-5.
func TestGoldenCalibration(t *testing.T) {
	for _, c := range readGolden(t).Calibration {
		iso := fitIsotonic(c.Scores, c.Labels)
		var worst float64
		for i, q := range c.Query {
			got := iso.Apply(q)
			worst = max(worst, math.Abs(got-c.Isotonic[i]))
			if math.Abs(got-c.Isotonic[i]) > 1e-12 {
				t.Errorf("isotonic(%v) = %.17g, scikit-learn %.17g", q, got, c.Isotonic[i])
			}
		}
		t.Logf("isotonic: largest difference %.3g over %d points", worst, len(c.Query))
		pl := fitPlatt(c.Scores, c.Labels)
		obj := plattObjective(c.Scores, c.Labels, pl.A, pl.B)
		if obj > c.Platt.Objective+1e-9*c.Platt.Objective {
			t.Errorf("Platt objective %.12g at (%v, %v), scikit-learn reached %.12g", obj, pl.A, pl.B, c.Platt.Objective)
		}
		worst = 0
		for i, q := range c.Query {
			got := pl.Apply(q)
			worst = max(worst, math.Abs(got-c.Platt.Predict[i]))
			if math.Abs(got-c.Platt.Predict[i]) > 1e-5 {
				t.Errorf("platt(%v) = %.10g, scikit-learn %.10g", q, got, c.Platt.Predict[i])
			}
		}
		t.Logf("platt: a %.9g b %.9g (scikit-learn %.9g %.9g), objective %.12g (%.12g); largest difference %.3g",
			pl.A, pl.B, c.Platt.A, c.Platt.B, obj, c.Platt.Objective, worst)
	}
}

func plattObjective(s, y []float64, a, b float64) float64 {
	var p1, p0 float64
	for _, v := range y {
		if v == 1 {
			p1++
		} else {
			p0++
		}
	}
	var f float64
	for i, x := range s {
		tg := 1 / (p0 + 2)
		if y[i] == 1 {
			tg = (p1 + 1) / (p1 + 2)
		}
		z := a*x + b
		f += tg*z + math.Log1p(math.Exp(-z))
	}
	return f
}

func TestGoldenDelayQuantiles(t *testing.T) {
	d := readGolden(t).Delays
	sorted := slices.Clone(d.Values)
	slices.Sort(sorted)
	for q, want := range d.Quantiles {
		var p float64
		switch q {
		case "50":
			p = 0.5
		case "90":
			p = 0.9
		case "99":
			p = 0.99
		}
		if got := quantile(sorted, p); !near(want, got) {
			t.Errorf("p%s = %.17g, NumPy %.17g", q, got, want)
		}
	}
}

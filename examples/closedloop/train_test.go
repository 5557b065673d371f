package main

import (
	"math"
	"testing"
)

// The trainer recovers the world's true coefficients from enough data: the
// fit is right, not merely plausible.
func TestFitRecoversTruth(t *testing.T) {
	for name, r := range map[string]regime{"before": before, "after": after} {
		xs, ys := newWorld(1).sample(r, 100_000)
		m, err := fit(xs, ys, trainOptions{l2: 0, maxIters: 50, tol: 1e-10})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The bias is the logit at x = 0, far from the data's centre after
		// the drift (the features' means moved), so it is the least
		// determined parameter: its standard error here is about 0.07.
		if d := math.Abs(m.Bias - r.truth[0]); d > 0.2 {
			t.Errorf("%s: bias %.3f, truth %.3f", name, m.Bias, r.truth[0])
		}
		for i, w := range m.Weights {
			if d := math.Abs(w - r.truth[i+1]); d > 0.1 {
				t.Errorf("%s: weight %d = %.3f, truth %.3f", name, i, w, r.truth[i+1])
			}
		}
	}
}

// After the drift, the old model ranks frauds worse than one refitted on
// recent traffic: the premise of the closed loop.
func TestRetrainingPaysAfterDrift(t *testing.T) {
	w := newWorld(2)
	xs1, ys1 := w.sample(before, 50_000)
	v1, err := fit(xs1, ys1, defaultTrain)
	if err != nil {
		t.Fatal(err)
	}
	xs2, ys2 := w.sample(after, 20_000)
	v2, err := fit(xs2, ys2, defaultTrain)
	if err != nil {
		t.Fatal(err)
	}
	xs, ys := w.sample(after, 50_000)
	s1, s2 := make([]float64, len(xs)), make([]float64, len(xs))
	for i, x := range xs {
		s1[i], s2[i] = v1.score(x), v2.score(x)
	}
	a1, a2 := auc(s1, ys), auc(s2, ys)
	t.Logf("AUC after the drift: v1 %.3f, v2 %.3f", a1, a2)
	if a2 < a1+0.03 {
		t.Errorf("AUC after the drift: v1 %.3f, v2 %.3f; want v2 clearly better", a1, a2)
	}
}

func TestFitRefusesOneClass(t *testing.T) {
	xs := make([][numFeatures]float32, 100)
	ys := make([]bool, 100)
	if _, err := fit(xs, ys, defaultTrain); err == nil {
		t.Error("fit with no positive rows: no error")
	}
}

func TestAUC(t *testing.T) {
	cases := []struct {
		scores []float64
		labels []bool
		want   float64
	}{
		{[]float64{0.1, 0.2, 0.8, 0.9}, []bool{false, false, true, true}, 1},
		{[]float64{0.9, 0.8, 0.2, 0.1}, []bool{false, false, true, true}, 0},
		{[]float64{0.5, 0.5, 0.5, 0.5}, []bool{false, true, false, true}, 0.5},
		{[]float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true}, 0.75}, // sklearn's example
	}
	for _, c := range cases {
		if got := auc(c.scores, c.labels); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("auc(%v, %v) = %v, want %v", c.scores, c.labels, got, c.want)
		}
	}
}

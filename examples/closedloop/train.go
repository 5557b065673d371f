package main

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// logistic is a fitted logistic regression: P(fraud | x) = σ(b + w·x).
type logistic struct {
	Bias    float64
	Weights [numFeatures]float64
}

// trainOptions bound the fit. Newton's method (iteratively reweighted least
// squares) on nine parameters converges in a handful of steps, exactly and
// deterministically, which a demo that retrains on its own needs more than
// the generality of stochastic gradient descent.
type trainOptions struct {
	l2       float64 // ridge penalty on the weights (not the bias)
	maxIters int
	tol      float64 // stop when no parameter moves more than this
}

var defaultTrain = trainOptions{l2: 1e-3, maxIters: 50, tol: 1e-8}

// errNotEnoughData is returned when a fit has too few rows, or only one
// class, to say anything.
var errNotEnoughData = errors.New("closedloop: not enough labelled rows of both classes to train")

// fit fits a logistic regression to rows xs with labels ys by Newton's
// method with an L2 penalty.
func fit(xs [][numFeatures]float32, ys []bool, o trainOptions) (logistic, error) {
	const p = numFeatures + 1
	var pos int
	for _, y := range ys {
		if y {
			pos++
		}
	}
	if len(xs) != len(ys) || len(xs) < 2*p || pos == 0 || pos == len(ys) {
		return logistic{}, fmt.Errorf("%w (%d rows, %d positive)", errNotEnoughData, len(ys), pos)
	}
	beta := make([]float64, p)
	// A start at the base rate's logit saves a step or two.
	rate := float64(pos) / float64(len(ys))
	beta[0] = math.Log(rate / (1 - rate))
	row := make([]float64, p)
	for range o.maxIters {
		grad := make([]float64, p)
		hess := make([]float64, p*p)
		for i, x := range xs {
			row[0] = 1
			for j, v := range x {
				row[j+1] = float64(v)
			}
			mu := sigmoid(dot(beta, row))
			y := 0.0
			if ys[i] {
				y = 1
			}
			wgt := max(mu*(1-mu), 1e-12)
			for a := range p {
				grad[a] += (y - mu) * row[a]
				for b := 0; b <= a; b++ {
					hess[a*p+b] += wgt * row[a] * row[b]
				}
			}
		}
		for a := 1; a < p; a++ {
			grad[a] -= o.l2 * float64(len(xs)) * beta[a]
			hess[a*p+a] += o.l2 * float64(len(xs))
		}
		for a := range p {
			for b := a + 1; b < p; b++ {
				hess[a*p+b] = hess[b*p+a]
			}
		}
		step, err := solveSPD(hess, grad, p)
		if err != nil {
			return logistic{}, err
		}
		var moved float64
		for a := range p {
			beta[a] += step[a]
			moved = max(moved, math.Abs(step[a]))
		}
		if moved < o.tol {
			break
		}
	}
	var m logistic
	m.Bias = beta[0]
	copy(m.Weights[:], beta[1:])
	return m, nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// solveSPD solves A·x = b for a symmetric positive definite n×n A by
// Cholesky decomposition.
func solveSPD(a, b []float64, n int) ([]float64, error) {
	l := make([]float64, n*n)
	for i := range n {
		for j := 0; j <= i; j++ {
			s := a[i*n+j]
			for k := range j {
				s -= l[i*n+k] * l[j*n+k]
			}
			if i == j {
				if s <= 0 {
					return nil, errors.New("closedloop: the fit's Hessian is not positive definite (features collinear?)")
				}
				l[i*n+i] = math.Sqrt(s)
			} else {
				l[i*n+j] = s / l[j*n+j]
			}
		}
	}
	y := make([]float64, n)
	for i := range n {
		s := b[i]
		for k := range i {
			s -= l[i*n+k] * y[k]
		}
		y[i] = s / l[i*n+i]
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * x[k]
		}
		x[i] = s / l[i*n+i]
	}
	return x, nil
}

// score is the model's fraud probability for x, in float64.
func (m logistic) score(x [numFeatures]float32) float64 {
	z := m.Bias
	for i, v := range x {
		z += m.Weights[i] * float64(v)
	}
	return sigmoid(z)
}

// onnx writes the model in the demo model's signature: "features" FP32
// [-1, 8] → "score" FP32 [-1, 1], so the server, the dashboard and the curl
// line of the fraud demo all work with it unchanged.
func (m logistic) onnx() ([]byte, error) {
	w := make([]float32, numFeatures)
	for i, v := range m.Weights {
		w[i] = float32(v)
	}
	return onnxbuild.MLP(onnxbuild.MLPSpec{
		Name: "fraud", Input: "features", Output: "score",
		Layers: []onnxbuild.Dense{{In: numFeatures, Out: 1, W: w, B: []float32{float32(m.Bias)}}},
		Head:   "sigmoid",
	})
}

// auc is the area under the ROC curve of scores against labels: the chance
// that a random fraud scores above a random legitimate transaction (ties
// count half). It is how the timeline says a model is better, independent
// of any threshold.
func auc(scores []float64, labels []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmpFloat(scores[a], scores[b]) })
	// Mann–Whitney U from average ranks.
	var rankSum float64
	var pos int
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if labels[idx[k]] {
				rankSum += avg
				pos++
			}
		}
		i = j
	}
	neg := len(scores) - pos
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

package main

import (
	"math"
	"math/rand/v2"
)

// The simulated world: card transactions with the demo fraud model's eight
// features (onnxbuild.FraudFeatures, already scaled) and a ground truth that
// changes at a known moment. Before the drift, fraud is driven by large,
// card-not-present, risky-merchant payments; after it, a new pattern appears
// — bursts of foreign payments far from home on young accounts — and the
// feature distribution moves with it. A model fitted before the drift keeps
// answering, but worse; one fitted on recent traffic learns the new pattern.
//
// Fraud is common here on purpose: 8.6 % of transactions before the drift
// and 17 % during the wave after it (real card fraud is nearer 0.1 %), so
// that a few thousand labelled transactions hold enough frauds to fit and
// compare models, and the story runs in a minute instead of a month.

const numFeatures = 8

// regime is one state of the world: how features are drawn and how they
// turn into fraud.
type regime struct {
	// mean and std of the Gaussian features (amount, distance_from_home,
	// txn_count_24h, account_age); hour and merchant_risk are uniform.
	amountMean, distanceMean, txnMean, ageMean float64
	// probabilities of the binary features.
	cardPresent, foreign float64
	// truth is the logit of fraud: bias then one weight per feature.
	truth [numFeatures + 1]float64
}

var (
	before = regime{
		amountMean: 0, distanceMean: 0, txnMean: 0, ageMean: 0,
		cardPresent: 0.7, foreign: 0.1,
		//        bias  amount hour merchant dist  txn   age   present foreign
		truth: [9]float64{-3.2, 1.4, 0, 1.6, 0.3, 0.2, -0.6, -1.5, 0.4},
	}
	after = regime{
		amountMean: 0.6, distanceMean: 1.0, txnMean: 0.8, ageMean: -0.7,
		cardPresent: 0.45, foreign: 0.4,
		truth: [9]float64{-7, 0.5, 0, 0.4, 1.5, 1.3, -1.2, -0.8, 1.4},
	}
)

// world draws transactions: each has features and a label from the regime
// in force. It is deterministic for a seed and owned by one goroutine.
type world struct {
	rng *rand.Rand
}

func newWorld(seed uint64) *world { return &world{rng: rand.New(rand.NewPCG(seed, 0xc105ed))} }

// draw returns one transaction's features and whether it is fraud.
func (w *world) draw(r regime) (x [numFeatures]float32, fraud bool) {
	n := w.rng.NormFloat64
	x[0] = float32(r.amountMean + n())
	x[1] = float32(w.rng.IntN(24)) / 23
	x[2] = float32(w.rng.Float64())
	x[3] = float32(r.distanceMean + n())
	x[4] = float32(r.txnMean + n())
	x[5] = float32(r.ageMean + n())
	x[6] = bernoulli(w.rng, r.cardPresent)
	x[7] = bernoulli(w.rng, r.foreign)
	return x, w.rng.Float64() < r.probability(x)
}

// sample draws n transactions and their labels.
func (w *world) sample(r regime, n int) ([][numFeatures]float32, []bool) {
	xs := make([][numFeatures]float32, n)
	ys := make([]bool, n)
	for i := range n {
		xs[i], ys[i] = w.draw(r)
	}
	return xs, ys
}

// probability is the true chance of fraud for x under the regime.
func (r regime) probability(x [numFeatures]float32) float64 {
	z := r.truth[0]
	for i, v := range x {
		z += r.truth[i+1] * float64(v)
	}
	return sigmoid(z)
}

func bernoulli(rng *rand.Rand, p float64) float32 {
	if rng.Float64() < p {
		return 1
	}
	return 0
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

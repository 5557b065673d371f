package onnxbuild

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// FraudFeatures names the 8 columns of the demo fraud model's "features"
// input, in order. The model expects them already scaled, as a feature
// pipeline would deliver them:
//
//	amount              log1p of the amount, standardised (z-score)
//	hour                local hour of day / 23, in [0, 1]
//	merchant_risk       risk score of the merchant category, in [0, 1]
//	distance_from_home  log1p of km from the cardholder's home, standardised
//	txn_count_24h       the card's transactions in the last 24 h, standardised
//	account_age         log1p of days since the account opened, standardised
//	card_present        1 for chip or contactless, 0 for card-not-present
//	foreign             1 when the merchant's country is not the card's
var FraudFeatures = []string{
	"amount", "hour", "merchant_risk", "distance_from_home",
	"txn_count_24h", "account_age", "card_present", "foreign",
}

// fraudRisk is how each feature pushes the demo score: the weights are
// seeded noise around these directions, so the model behaves plausibly in
// a demo (a large foreign card-not-present payment scores high) without
// pretending to be trained. Hour gets none: time-of-day risk is not
// monotone.
var fraudRisk = []float32{1, 0, 1, 0.8, 0.6, -0.7, -1, 0.8}

// FraudSpec is the demo fraud model as an [MLPSpec]: "features" FP32
// [-1, 8] → 16 ReLU units → "score" FP32 [-1, 1], the sigmoid of a fraud
// logit. Half of the hidden units fire on risky directions and raise the
// score, the other half on safe ones and lower it; the output bias sets a
// base rate near 5 %.
func FraudSpec() MLPSpec {
	const in, hidden = 8, 16
	rng := rand.New(rand.NewPCG(2024, 0xf4a0d))
	noise := func(scale float32) float32 { return scale * float32(2*rng.Float64()-1) }
	l1 := Dense{In: in, Out: hidden, W: make([]float32, in*hidden), B: make([]float32, hidden)}
	for i := range in {
		for j := range hidden {
			sign := float32(1)
			if j >= hidden/2 {
				sign = -1
			}
			l1.W[i*hidden+j] = sign*0.6*fraudRisk[i] + noise(0.25)
		}
	}
	for j := range l1.B {
		l1.B[j] = noise(0.1)
	}
	l2 := Dense{In: hidden, Out: 1, W: make([]float32, hidden), B: []float32{-3}}
	for j := range l2.W {
		sign := float32(1)
		if j >= hidden/2 {
			sign = -1
		}
		l2.W[j] = sign*0.4 + noise(0.1)
	}
	return MLPSpec{
		Name: "fraud", Input: "features", Output: "score",
		Layers: []Dense{l1, l2}, Activation: "relu", Head: "sigmoid",
	}
}

// FraudMLP is the serialised [FraudSpec], the model committed as
// testdata/models/fraud.onnx. Its bytes never change between runs or
// machines, so the committed file can be checked against it.
func FraudMLP() ([]byte, error) {
	spec := FraudSpec()
	if err := spec.check(); err != nil {
		return nil, err
	}
	// Built by hand rather than with MLP so the feature names travel in the
	// model's metadata, where a server can show them.
	g := mlpGraph(spec)
	g.Metadata("features", strings.Join(FraudFeatures, ","))
	return g.Model(DefaultOpset)
}

// Identity is the one-node graph "x" → Identity → "y" over element type t
// and the given dims (negative = dynamic): the smallest model that carries
// one element type through a runtime and back.
func Identity(t ElemType, dims ...int64) ([]byte, error) {
	g := NewGraph("identity_" + strings.ToLower(t.String()))
	g.Input("x", t, dims...)
	g.Node("Identity", []string{"x"}, []string{"y"})
	g.Output("y", t, dims...)
	return g.Model(DefaultOpset)
}

// MultiIO is a model with inputs of two types and outputs of three, for
// code that maps names, types and batch dims:
//
//	a     FP32  [-1, 4]  input
//	b     INT64 [-1, 2]  input
//	sum   FP32  [-1, 4]  a + a
//	b2    INT64 [-1, 2]  b * 2
//	label STRING[-1, 2]  b as decimal text (Cast to STRING, e.g. 7 → "7")
//
// Casting integers gives a STRING output whose text is exact on every
// runtime, which casting floats would not.
func MultiIO() ([]byte, error) {
	g := NewGraph("multi_io")
	g.Input("a", Float, -1, 4)
	g.Input("b", Int64, -1, 2)
	g.Initializer("two", Int64, nil, []int64{2})
	g.Node("Add", []string{"a", "a"}, []string{"sum"})
	g.Node("Mul", []string{"b", "two"}, []string{"b2"})
	g.Node("Cast", []string{"b"}, []string{"label"}, AttrInt("to", int64(String)))
	g.Output("sum", Float, -1, 4)
	g.Output("b2", Int64, -1, 2)
	g.Output("label", String, -1, 2)
	return g.Model(DefaultOpset)
}

// FraudVariant is the demo fraud model with its output bias moved by bias:
// the same signature and a different score for every request, so tests of
// hot reloads and rollouts can tell from an answer which variant gave it.
func FraudVariant(bias float32) ([]byte, error) {
	spec := FraudSpec() // builds its slices afresh: ours to change
	spec.Layers[1].B[0] += bias
	return MLP(spec)
}

// AddSub is the model of Triton's "simple" example: inputs INPUT0 and
// INPUT1 of element type t and shape [-1, n] give OUTPUT0 = INPUT0 + INPUT1
// and OUTPUT1 = INPUT0 - INPUT1.
func AddSub(t ElemType, n int64) ([]byte, error) {
	g := NewGraph("simple")
	g.Input("INPUT0", t, -1, n)
	g.Input("INPUT1", t, -1, n)
	g.Node("Add", []string{"INPUT0", "INPUT1"}, []string{"OUTPUT0"})
	g.Node("Sub", []string{"INPUT0", "INPUT1"}, []string{"OUTPUT1"})
	g.Output("OUTPUT0", t, -1, n)
	g.Output("OUTPUT1", t, -1, n)
	return g.Model(DefaultOpset)
}

// PooledClassifier is a minimal image classifier with the signature of
// Triton's densenet_onnx example: "data_0" FP32 [-1, channels, height,
// width] → GlobalAveragePool → a 1×1 convolution with weights w
// ([classes][channels]) and bias b ([classes]) → Softmax over the classes →
// "fc6_1" FP32 [-1, classes, 1, 1]. The trailing 1×1 of the output is what
// a Triton configuration's output reshape removes.
func PooledClassifier(channels, height, width int, w, b []float32) ([]byte, error) {
	classes := len(b)
	if classes == 0 || channels <= 0 || len(w) != classes*channels {
		return nil, fmt.Errorf("%w: pooled classifier: %d weights and %d biases for %d channels", ErrInvalidGraph, len(w), len(b), channels)
	}
	g := NewGraph("pooled_classifier")
	g.Input("data_0", Float, -1, int64(channels), int64(height), int64(width))
	g.Initializer("fc.w", Float, []int64{int64(classes), int64(channels), 1, 1}, w)
	g.Initializer("fc.b", Float, []int64{int64(classes)}, b)
	g.Node("GlobalAveragePool", []string{"data_0"}, []string{"pooled"})
	g.Node("Conv", []string{"pooled", "fc.w", "fc.b"}, []string{"logits"}, AttrInts("kernel_shape", 1, 1))
	g.Node("Softmax", []string{"logits"}, []string{"fc6_1"}, AttrInt("axis", 1))
	g.Output("fc6_1", Float, -1, int64(classes), 1, 1)
	return g.Model(DefaultOpset)
}

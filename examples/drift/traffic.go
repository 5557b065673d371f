package main

import (
	"math/rand/v2"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// features watches the fraud model's 8 inputs by name (onnxbuild's
// FraudFeatures), the two flags as categories, and its score.
func features() []drift.Feature {
	fs := drift.Columns("features", onnxbuild.FraudFeatures...)
	for i := range fs {
		if fs[i].Name == "card_present" || fs[i].Name == "foreign" {
			fs[i].Kind = drift.Categorical
		}
	}
	return append(fs, drift.NumericalFeature("score", drift.Output("score")))
}

// traffic draws transactions already scaled as the model expects (see
// onnxbuild.FraudFeatures). After the shift: larger amounts, far from
// home, and many more foreign card-not-present payments.
type traffic struct{ r *rand.Rand }

func newTraffic(seed uint64) *traffic { return &traffic{rand.New(rand.NewPCG(seed, 42))} }

func (g *traffic) request(rows int, shifted bool) *serving.Request {
	x := make([]float32, 0, rows*8)
	for range rows {
		amount, distance, present, foreign := g.r.NormFloat64(), g.r.NormFloat64(), 0.7, 0.1
		if shifted {
			amount, distance, present, foreign = amount*1.2+0.6, distance+0.5, 0.45, 0.35
		}
		x = append(x,
			float32(amount),
			float32(g.r.Float64()),               // hour / 23
			float32(g.r.Float64()*g.r.Float64()), // merchant risk
			float32(distance),
			float32(g.r.NormFloat64()), // transactions in 24 h
			float32(g.r.NormFloat64()), // account age
			bit(g.r.Float64() < present),
			bit(g.r.Float64() < foreign),
		)
	}
	t, err := serving.NewTensor("features", []int64{int64(rows), 8}, x)
	if err != nil {
		panic(err) // unreachable: the shape is built to fit
	}
	return &serving.Request{Model: "fraud", Version: "1", Inputs: []serving.Tensor{t}}
}

func bit(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

package main

import (
	"math/rand/v2"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// fraudVersions returns the demo fraud model (version 1) and a "retrained"
// version 2: the same network with every weight and bias scaled by a
// seeded factor in [0.8, 1.2], as a retraining on fresh data moves weights
// without turning the model around. The two agree on most transactions,
// not all: what the shadow's comparison is there to measure.
func fraudVersions() (v1, v2 []byte, err error) {
	if v1, err = onnxbuild.FraudMLP(); err != nil {
		return nil, nil, err
	}
	spec := onnxbuild.FraudSpec()
	rng := rand.New(rand.NewPCG(2, 0x7e7a1))
	jitter := func(xs []float32) {
		for i := range xs {
			xs[i] *= float32(0.8 + 0.4*rng.Float64())
		}
	}
	for i := range spec.Layers {
		// The spec's slices are its own: FraudSpec builds them afresh.
		jitter(spec.Layers[i].W)
		jitter(spec.Layers[i].B)
	}
	if v2, err = onnxbuild.MLP(spec); err != nil {
		return nil, nil, err
	}
	return v1, v2, nil
}

package main

import (
	"math/rand/v2"

	"github.com/servekit/servekit/internal/onnxbuild"
)

// fraudVersions returns the demo fraud model (version 1, served remotely
// and embedded as version 2) and a "retrained" challenger (version 3): the
// same network with every weight and bias scaled by a seeded factor in
// [0.8, 1.2], which agrees with it on most transactions, not all.
func fraudVersions() (v1, v3 []byte, err error) {
	if v1, err = onnxbuild.FraudMLP(); err != nil {
		return nil, nil, err
	}
	spec := onnxbuild.FraudSpec()
	rng := rand.New(rand.NewPCG(3, 0x7e7a1))
	for i := range spec.Layers {
		for _, xs := range [][]float32{spec.Layers[i].W, spec.Layers[i].B} {
			for j := range xs {
				xs[j] *= float32(0.8 + 0.4*rng.Float64())
			}
		}
	}
	if v3, err = onnxbuild.MLP(spec); err != nil {
		return nil, nil, err
	}
	return v1, v3, nil
}

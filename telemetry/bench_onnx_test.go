package telemetry_test

import (
	"context"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// BenchmarkFraudONNX is BenchmarkLinear on the demo model through ONNX
// Runtime (skipped when ORT is missing): the instrumentation's cost next to
// a real, tiny model's.
func BenchmarkFraudONNX(b *testing.B) {
	if _, err := onnx.InitRuntime(""); err != nil {
		b.Skipf("ONNX Runtime not available: %v", err)
	}
	bytes, err := onnxbuild.FraudMLP()
	if err != nil {
		b.Fatal(err)
	}
	model, err := onnx.LoadBytes("fraud", bytes)
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	x, err := serving.NewTensor("features", []int64{1, 8}, []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0, -0.4})
	if err != nil {
		b.Fatal(err)
	}
	req := &serving.Request{Model: "fraud", Version: "1", Inputs: []serving.Tensor{x}}
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			p := in.mw(model)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

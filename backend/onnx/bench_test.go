package onnx_test

import (
	"context"
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/serving"
)

var batches = []int{1, 32}

// rawFraud is a bare session of the demo model with Load's default
// options, destroyed when b ends.
func rawFraud(b testing.TB) *ort.DynamicAdvancedSession {
	requireORT(b)
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	so.SetIntraOpNumThreads(onnx.DefaultIntraOpThreads)
	so.SetInterOpNumThreads(1)
	s, err := ort.NewDynamicAdvancedSession(fraudPath(), []string{"features"}, []string{"score"}, so)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Destroy() })
	return s
}

// rawFraudValues are preallocated input and output tensors of n rows,
// destroyed when b ends.
func rawFraudValues(b testing.TB, n int) (in, out ort.Value) {
	x, _ := serving.Values[float32](fraudRows(n).Inputs[0])
	i, err := ort.NewTensor(ort.NewShape(int64(n), 8), x)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { i.Destroy() })
	o, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), 1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Destroy() })
	return i, o
}

// BenchmarkRawORT is the floor: onnxruntime_go alone, one session with the
// same options as Load's defaults, input and output tensors preallocated
// once and reused.
func BenchmarkRawORT(b *testing.B) {
	s := rawFraud(b)
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			in, out := rawFraudValues(b, n)
			ins, outs := []ort.Value{in}, []ort.Value{out}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Run(ins, outs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawORTIoBinding is BenchmarkRawORT through an OrtIoBinding: the
// output bound once, the input bound again before each run, as new data
// must be (binding a host input copies it to a CUDA device at bind time).
// It is the binding's only way to choose where values live; compare it
// with BenchmarkRawORT to see whether it pays (bench/gpu measures the same
// on CUDA).
func BenchmarkRawORTIoBinding(b *testing.B) {
	s := rawFraud(b)
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			in, out := rawFraudValues(b, n)
			bind, err := s.CreateIoBinding()
			if err != nil {
				b.Fatal(err)
			}
			defer bind.Destroy()
			if err := bind.BindOutput("score", out); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				bind.ClearBoundInputs()
				if err := bind.BindInput("features", in); err != nil {
					b.Fatal(err)
				}
				if err := s.RunWithBinding(bind); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPredict is the same work through Model.Predict: validation,
// tensor wrapping, output allocation, response and telemetry (no-op
// providers). Compare with BenchmarkRawORT in one run.
func BenchmarkPredict(b *testing.B) {
	m := loadFraud(b)
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			req := fraudRows(n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPredictCancellable adds a cancellable ctx, which arms ONNX
// Runtime's terminate flag for the run (as every HTTP request does).
func BenchmarkPredictCancellable(b *testing.B) {
	m := loadFraud(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := fraudRows(32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Predict(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThreads compares intra-op thread counts under concurrent load
// (all goroutines share the session), the case servekit is built for.
func BenchmarkThreads(b *testing.B) {
	for _, threads := range []int{1, 2, 0} {
		b.Run(fmt.Sprintf("intra=%d", threads), func(b *testing.B) {
			m := loadFraud(b, onnx.WithIntraOpThreads(threads))
			req := fraudRows(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Predict(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

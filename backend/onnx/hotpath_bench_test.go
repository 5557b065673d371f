package onnx_test

import (
	"context"
	"fmt"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// hotModel is a model of BenchmarkOverhead: one FP32 input [N, in] and
// one FP32 output [N, out].
type hotModel struct {
	name, input, output string
	in, out             int
	build               func() ([]byte, error)
}

var hotModels = []hotModel{
	{"fraud", "features", "score", 8, 1, onnxbuild.FraudMLP},
	{"wide", "input", "output", 256, 10, func() ([]byte, error) {
		return onnxbuild.RandomMLP("wide", []int{256, 1024, 1024, 10}, "softmax", 7)
	}},
}

// BenchmarkOverhead measures what Predict adds to ONNX Runtime, side by
// side in one run: impl=raw is onnxruntime_go's DynamicAdvancedSession.Run
// on tensors made once (the floor), impl=predict is Model.Predict on the
// same rows with a background ctx, impl=predict-ctx with a cancellable one
// (which arms ONNX Runtime's terminate flag, as every HTTP request does).
// Both sessions have Load's default options. Compare with
//
//	benchstat -col /impl out.txt
//
// The fraud model (8 → 1) is nearly all overhead; the wide MLP
// (256 → 1024 → 1024 → 10) shows the overhead against real compute and,
// at batch 32, takes the zero-copy path (its input is over the frames'
// 4 KiB).
func BenchmarkOverhead(b *testing.B) {
	requireORT(b)
	for _, hm := range hotModels {
		// Each model loads inside its own sub-benchmark, so a -bench
		// pattern that leaves it out does not pay for building it.
		b.Run("model="+hm.name, func(b *testing.B) { overhead(b, hm) })
	}
}

func overhead(b *testing.B, hm hotModel) {
	onnxBytes, err := hm.build()
	if err != nil {
		b.Fatal(err)
	}
	m, err := onnx.LoadBytes(hm.name, onnxBytes)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	so.SetIntraOpNumThreads(onnx.DefaultIntraOpThreads)
	so.SetInterOpNumThreads(1)
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(onnxBytes, []string{hm.input}, []string{hm.output}, so)
	so.Destroy()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	for _, n := range batches {
		x := make([]float32, n*hm.in)
		for i := range x {
			x[i] = float32(i%11)/5 - 1
		}
		t, err := serving.NewTensor(hm.input, []int64{int64(n), int64(hm.in)}, x)
		if err != nil {
			b.Fatal(err)
		}
		req := &serving.Request{Inputs: []serving.Tensor{t}}
		prefix := fmt.Sprintf("batch=%d", n)
		b.Run(prefix+"/impl=raw", func(b *testing.B) {
			in, err := ort.NewTensor(ort.NewShape(int64(n), int64(hm.in)), x)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Destroy()
			out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(hm.out)))
			if err != nil {
				b.Fatal(err)
			}
			defer out.Destroy()
			ins, outs := []ort.Value{in}, []ort.Value{out}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Run(ins, outs); err != nil {
					b.Fatal(err)
				}
			}
		})
		predict := func(ctx context.Context) func(*testing.B) {
			return func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Predict(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.Run(prefix+"/impl=predict", predict(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		b.Run(prefix+"/impl=predict-ctx", predict(ctx))
		cancel()
	}
}

package onnx_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/serving"
)

// BenchmarkZipMap compares three ways to get a LightGBM classifier's
// probabilities (onnxmltools' default export, with ZipMap): raw ONNX Runtime
// with the maps read back through the binding, as a server that kept the
// ZipMap would have to; servekit's Predict, which serves the same numbers
// as an [N, C] tensor from the rewritten graph; and raw ONNX Runtime on
// the label output alone, a floor that reads no probabilities.
func BenchmarkZipMap(b *testing.B) {
	requireORT(b)
	c := tabulartest.Find(b, "lgbm_multi_zipmap")
	m, err := onnx.Load(c.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	so, _ := ort.NewSessionOptions()
	defer so.Destroy()
	so.SetIntraOpNumThreads(onnx.DefaultIntraOpThreads)
	so.SetInterOpNumThreads(1)
	maps, err := ort.NewDynamicAdvancedSession(c.Path, []string{"input"}, []string{"label", "output_probability"}, so)
	if err != nil {
		b.Fatal(err)
	}
	defer maps.Destroy()
	labels, err := ort.NewDynamicAdvancedSession(c.Path, []string{"input"}, []string{"label"}, so)
	if err != nil {
		b.Fatal(err)
	}
	defer labels.Destroy()
	for _, n := range []int{1, 64} {
		x := make([]float32, n*6)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		in, _ := ort.NewTensor(ort.NewShape(int64(n), 6), x)
		defer in.Destroy()
		b.Run(fmt.Sprintf("batch=%d/ort-maps", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				outs := []ort.Value{nil, nil}
				if err := maps.Run([]ort.Value{in}, outs); err != nil {
					b.Fatal(err)
				}
				seq := outs[1].(*ort.Sequence)
				vals, _ := seq.GetValues()
				for _, v := range vals {
					_, vv, _ := v.(*ort.Map).GetKeysAndValues()
					_ = vv.(*ort.Tensor[float32]).GetData()
				}
				outs[0].Destroy()
				outs[1].Destroy()
			}
		})
		b.Run(fmt.Sprintf("batch=%d/servekit", n), func(b *testing.B) {
			t, _ := serving.NewTensor("input", []int64{int64(n), 6}, x)
			req := &serving.Request{Inputs: []serving.Tensor{t}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Predict(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("batch=%d/ort-label-only", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				outs := []ort.Value{nil}
				if err := labels.Run([]ort.Value{in}, outs); err != nil {
					b.Fatal(err)
				}
				outs[0].Destroy()
			}
		})
	}
}

package onnx_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			requireORT(t)
			m, err := onnx.Load(fraudPath())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			return m
		},
		Request:       func() *serving.Request { return fraudRows(3) },
		Deterministic: true,
	})
}

func TestFraudMetadataAndValues(t *testing.T) {
	m := loadFraud(t, onnx.WithName("fraud"), onnx.WithVersion("7"))
	md := m.Metadata()
	if md.Name != "fraud" || md.Version != "7" || md.Platform != onnx.Platform {
		t.Errorf("metadata %q %q %q", md.Name, md.Version, md.Platform)
	}
	want := serving.TensorSpec{Name: "features", DataType: serving.FP32, Shape: []int64{-1, 8}}
	if len(md.Inputs) != 1 || md.Inputs[0].Name != want.Name || md.Inputs[0].DataType != want.DataType || !equal(md.Inputs[0].Shape, want.Shape) {
		t.Errorf("inputs %+v, want [%+v]", md.Inputs, want)
	}
	if len(md.Outputs) != 1 || md.Outputs[0].Name != "score" || !equal(md.Outputs[0].Shape, []int64{-1, 1}) {
		t.Errorf("outputs %+v", md.Outputs)
	}
	if !md.Batchable() {
		t.Error("fraud model not batchable")
	}
	req := fraudRows(5)
	resp, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "fraud" || resp.Version != "7" || resp.ID != "r" {
		t.Errorf("response model %q version %q id %q", resp.Model, resp.Version, resp.ID)
	}
	score, _ := resp.Output("score")
	got, _ := serving.Values[float32](score)
	x, _ := serving.Values[float32](req.Inputs[0])
	ref, err := onnxbuild.FraudSpec().Eval(x)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(score.Shape, []int64{5, 1}) || len(got) != len(ref) {
		t.Fatalf("score shape %v (%d values), want [5 1]", score.Shape, len(got))
	}
	for i := range ref {
		if math.Abs(float64(got[i]-ref[i])) > 1e-5 {
			t.Errorf("score[%d] = %v, want %v", i, got[i], ref[i])
		}
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLargeBatchZeroCopy: a batch too large for the pooled frames takes
// the zero-copy path and agrees with the spec's own evaluation.
func TestLargeBatchZeroCopy(t *testing.T) {
	m := loadFraud(t)
	for _, n := range []int{1, 300, 1000} {
		predictFraud(t, m, fraudRows(n), fmt.Sprintf("batch %d", n))
	}
}

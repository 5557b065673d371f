package onnx_test

import (
	"context"
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireORT loads ONNX Runtime or skips the test when it is not installed;
// with SERVEKIT_REQUIRE_ORT=1 (CI) a missing runtime fails the test instead.
func requireORT(t testing.TB) {
	t.Helper()
	orttest.Require(t)
}

// fraudPath is the committed demo model.
func fraudPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "models", "fraud.onnx")
}

func loadFraud(t testing.TB, opts ...onnx.Option) *onnx.Model {
	t.Helper()
	requireORT(t)
	m, err := onnx.Load(fraudPath(), opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// loadBytes builds a model with onnxbuild and loads it.
func loadBytes(t testing.TB, name string, b []byte, err error, opts ...onnx.Option) *onnx.Model {
	t.Helper()
	requireORT(t)
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	m, err := onnx.LoadBytes(name, b, opts...)
	if err != nil {
		t.Fatalf("LoadBytes %s: %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// fraudRows is a request of n rows of the fraud model's 8 features.
func fraudRows(n int) *serving.Request {
	x := make([]float32, 8*n)
	for i := range x {
		x[i] = float32(i%11)/5 - 1
	}
	t, err := serving.NewTensor("features", []int64{int64(n), 8}, x)
	if err != nil {
		panic(err)
	}
	return &serving.Request{ID: "r", Model: "fraud", Inputs: []serving.Tensor{t}}
}

// predictFraud runs req through m and reports, as "what: score[i] = …",
// the first score that is not the fraud spec's own evaluation of req's
// features.
func predictFraud(t *testing.T, m *onnx.Model, req *serving.Request, what string) {
	t.Helper()
	resp, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := resp.Output("score")
	got, _ := serving.Values[float32](s)
	x, _ := serving.Values[float32](req.Inputs[0])
	want, _ := onnxbuild.FraudSpec().Eval(x)
	if len(got) != len(want) {
		t.Fatalf("%s: %d scores, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("%s: score[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

var _ = onnxbuild.Float

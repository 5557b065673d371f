package quality_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo answers each request with its input "x" renamed "score": the test
// decides what the model predicts.
var echo = servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
	out := req.Inputs[0]
	out.Name = "score"
	return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{out}}, nil
})

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newMonitor(t testing.TB, opts ...quality.Option) *quality.Monitor {
	t.Helper()
	m, err := quality.NewMonitor(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

// predict sends one request of rows × width scores to version through the
// monitor's middleware, with id.
func predict(t testing.TB, p serving.Predictor, version, id string, width int, scores []float64) {
	t.Helper()
	shape := []int64{int64(len(scores) / width)}
	if width > 1 {
		shape = append(shape, int64(width))
	}
	x, err := serving.NewTensor("x", shape, scores)
	require.NoError(t, err)
	_, err = p.Predict(context.Background(), &serving.Request{ID: id, Model: "m", Version: version, Inputs: []serving.Tensor{x}})
	require.NoError(t, err)
}

// feed sends n predictions of width scores each, one request each, with
// ids prefix0, prefix1, …
func feed(t testing.TB, p serving.Predictor, version, prefix string, width int, scores []float64) {
	t.Helper()
	for i := 0; i < len(scores)/width; i++ {
		predict(t, p, version, fmt.Sprint(prefix, i), width, scores[i*width:(i+1)*width])
	}
}

// labelAll labels the predictions feed made.
func labelAll(t testing.TB, m *quality.Monitor, prefix string, labels []float64) quality.LabelResult {
	t.Helper()
	ls := make([]quality.Label, len(labels))
	for i, v := range labels {
		ls[i] = quality.Label{ID: fmt.Sprint(prefix, i), Value: v}
	}
	res, err := m.Label(context.Background(), "m", ls)
	require.NoError(t, err)
	return res
}

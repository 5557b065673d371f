package drift_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// features of the test model, servingtest.Linear(2): inputs x[:,0] and
// x[:,1], output y[:,0] = 2x0+1.
var features = []drift.Feature{
	drift.NumericalFeature("a", drift.InputColumn("x", 0)),
	drift.NumericalFeature("b", drift.InputColumn("x", 1)),
	drift.NumericalFeature("score", drift.OutputColumn("y", 0)),
}

// gen draws rows of (a, b): a ~ N(shift, 1), b ~ U(0, 1).
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, 7))} }

func (g *gen) rows(n int, shift float64) []float32 {
	x := make([]float32, 2*n)
	for i := range n {
		x[2*i] = float32(g.r.NormFloat64() + shift)
		x[2*i+1] = float32(g.r.Float64())
	}
	return x
}

func request(x []float32) *serving.Request {
	t, err := serving.NewTensor("x", []int64{int64(len(x) / 2), 2}, x)
	if err != nil {
		panic(err)
	}
	return &serving.Request{Model: "linear", Version: "1", Inputs: []serving.Tensor{t}}
}

// referenceProfile profiles n rows of unshifted traffic through the model.
func referenceProfile(t testing.TB, n int, opts ...drift.ProfileOption) *drift.Profile {
	t.Helper()
	b, err := drift.NewProfileBuilder("linear", "1", features, opts...)
	require.NoError(t, err)
	model := servingtest.Linear(2)
	g := newGen(1)
	for done := 0; done < n; done += 100 {
		req := request(g.rows(min(100, n-done), 0))
		resp, err := model.Predict(context.Background(), req)
		require.NoError(t, err)
		require.NoError(t, b.AddRequest(req, resp))
	}
	p, err := b.Profile()
	require.NoError(t, err)
	return p
}

// serve sends rows of traffic with the given shift through p, in requests
// of batch rows.
func serve(t testing.TB, p serving.Predictor, g *gen, rows, batch int, shift float64) {
	t.Helper()
	for done := 0; done < rows; done += batch {
		_, err := p.Predict(context.Background(), request(g.rows(min(batch, rows-done), shift)))
		require.NoError(t, err)
	}
}

func flush(t testing.TB, m *drift.Monitor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, m.Flush(ctx))
}

func newMonitor(t testing.TB, opts ...drift.Option) *drift.Monitor {
	t.Helper()
	m, err := drift.NewMonitor(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

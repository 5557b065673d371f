package report_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/report"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hostile is a feature name and a category that would run script if the
// report did not escape them.
const hostile = `<img src=x onerror=alert(1)>"'&`

// richModel has a numerical 2-D input, a BYTES input, a score and class
// probabilities, so the report shows every kind of chart.
func richModel() serving.Predictor {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		x, _ := req.Input("x")
		v, err := serving.Values[float32](x)
		if err != nil {
			return nil, err
		}
		n := len(v) / 2
		score, probs := make([]float32, n), make([]float32, 3*n)
		for i := range n {
			score[i] = v[2*i]*0.5 + v[2*i+1]
			probs[3*i+int(v[2*i+1]*2.99)] = 1
		}
		s, _ := serving.NewTensor("score", []int64{int64(n), 1}, score)
		p, _ := serving.NewTensor("probs", []int64{int64(n), 3}, probs)
		return &serving.Response{Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{s, p}}, nil
	})
}

var richFeatures = []drift.Feature{
	drift.NumericalFeature("amount", drift.InputColumn("x", 0)),
	drift.NumericalFeature("ratio", drift.InputColumn("x", 1)),
	drift.CategoricalFeature(hostile, drift.Input("country")),
	drift.NumericalFeature("score", drift.Output("score")),
	drift.CategoricalFeature("class", drift.Argmax("probs")),
}

var countries = []string{"fr", "de", "it", "es", hostile}

func richRequest(g *gen, n int, shift float64) *serving.Request {
	x := g.rows(n, shift)
	c := make([]string, n)
	for i := range c {
		k := g.r.IntN(4)
		if shift > 0 && g.r.Float64() < 0.3 {
			k = 4
		}
		c[i] = countries[k]
	}
	xt, _ := serving.NewTensor("x", []int64{int64(n), 2}, x)
	ct, _ := serving.NewStrings("country", []int64{int64(n)}, c)
	return &serving.Request{Model: "fraud<b>", Version: "2", Inputs: []serving.Tensor{xt, ct}}
}

// reportMonitor runs a monitor over the rich model through a shift; its
// profile has a multivariate reference, so the report draws every check.
func reportMonitor(t testing.TB, opts ...drift.Option) *drift.Monitor {
	t.Helper()
	model := richModel()
	b, err := drift.NewProfileBuilder("fraud<b>", "2", richFeatures, drift.WithMultivariate(0))
	require.NoError(t, err)
	g := newGen(12)
	for range 40 {
		req := richRequest(g, 100, 0)
		resp, err := model.Predict(context.Background(), req)
		require.NoError(t, err)
		require.NoError(t, b.AddRequest(req, resp))
	}
	prof, err := b.Profile()
	require.NoError(t, err)
	m := newMonitor(t, append([]drift.Option{drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(400, 0))}, opts...)...)
	p := m.Middleware()(model)
	for i := range 16 {
		shift := 0.0
		if i >= 10 {
			shift = 0.8
		}
		_, err := p.Predict(context.Background(), richRequest(g, 100, shift))
		require.NoError(t, err)
	}
	flush(t, m)
	require.True(t, m.Status("fraud<b>", "2").Alarmed)
	return m
}

func TestDriftPage(t *testing.T) {
	m := reportMonitor(t)
	srv := httptest.NewServer(report.Handler(report.Drift(m)))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	page := string(body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.NotContains(t, page, "<img", "untrusted names are escaped")
	assert.NotContains(t, page, "fraud<b>")
	assert.Contains(t, page, "&lt;img src=x onerror=alert(1)&gt;")
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, "http://", "nothing is loaded from elsewhere")
	assert.NotContains(t, page, "https://")
	for _, want := range []string{"<title>Drift report</title>", "ALARM", "amount", "chi_square", "jensen_shannon", "Alerts, newest first", "raised"} {
		assert.Contains(t, page, want)
	}

	assert.NotContains(t, page, "Model quality", "no quality part without a quality source")

	post, err := http.Post(srv.URL, "text/plain", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(post.Body)
	post.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)
	assert.JSONEq(t, `{"error": "report: method not allowed; use GET"}`, string(b))

	// Results evaluated elsewhere (merged replicas) draw the same page.
	var fromResults strings.Builder
	require.NoError(t, report.WriteHTML(&fromResults, report.DriftResults(m.Report())))
	assert.Contains(t, fromResults.String(), "jensen_shannon")
	assert.Contains(t, fromResults.String(), "&lt;img src=x onerror=alert(1)&gt;")

	path := filepath.Join(t.TempDir(), "drift.html")
	require.NoError(t, report.WriteFile(path, report.Drift(m)))
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(onDisk), "jensen_shannon")
}

func TestDriftPageEmpty(t *testing.T) {
	m := newMonitor(t)
	var b strings.Builder
	require.NoError(t, report.WriteHTML(&b, report.Drift(m)))
	assert.Contains(t, b.String(), "No model version has been evaluated yet")
	assert.Contains(t, b.String(), "No alerts")
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

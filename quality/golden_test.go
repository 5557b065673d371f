package quality_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
)

type goldenCase struct {
	Name      string
	Kind      quality.Kind
	Threshold float64
	Classes   int
	Scores    []float64
	Labels    []float64
	Metrics   map[quality.Metric]float64
}

// Through the whole path (the middleware remembers each prediction by
// request id, Label joins the labels, the window settles once every
// prediction is labelled), a window's realized metrics are scikit-learn's
// on the same rows (testdata/golden/metrics.json) within 1e-9, and its
// counts are exact.
func TestGoldenPipeline(t *testing.T) {
	b, err := os.ReadFile("testdata/golden/metrics.json")
	require.NoError(t, err)
	var g struct{ Cases []goldenCase }
	require.NoError(t, json.Unmarshal(b, &g))
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			task := quality.Task{Kind: c.Kind, Output: "score", Threshold: c.Threshold, NumClasses: c.Classes}
			n := len(c.Labels)
			m := newMonitor(t, quality.WithTask("m", task), quality.WithWindow(quality.CountWindow(n)), quality.WithDetectors(), quality.WithQueue(n))
			p := m.Middleware()(echo)
			width := max(c.Classes, 1)
			feed(t, p, "1", "r", width, c.Scores)
			res := labelAll(t, m, "r", c.Labels)
			assert.Equal(t, quality.LabelResult{Matched: int64(n)}, res)
			require.NoError(t, m.Flush(context.Background()))

			rs := m.Results("m", "1")
			require.Len(t, rs, 1)
			r := rs[0]
			assert.True(t, r.Settled, "every prediction labelled: settled")
			assert.Equal(t, quality.Window{Index: 1, Start: r.Window.Start, End: r.Window.End,
				Predictions: int64(n), Identified: int64(n), Labelled: int64(n)}, r.Window)
			assert.Equal(t, 1.0, r.Window.Coverage())
			for metric, want := range c.Metrics {
				mr, ok := r.Metric(metric)
				require.True(t, ok, "%s reported", metric)
				require.NotNil(t, mr.Realized, "%s realized", metric)
				assert.InDelta(t, want, *mr.Realized, 1e-9*math.Max(1, math.Abs(want)), "%s", metric)
			}
		})
	}
}

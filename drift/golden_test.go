package drift_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/drift/internal/golden"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

type pipelineCase struct {
	Name       string
	Kind       string
	Ref, Cur   golden.Spec
	Exact      bool
	Discrete   bool
	Edges      []float64
	Names      []string
	Categories []string
	RefCounts  []int64 `json:"ref_counts"`
	CurCounts  []int64 `json:"cur_counts"`
	Statistics map[string]struct {
		Value float64
		P     *float64
	}
	RawKS          float64 `json:"raw_ks"`
	RawWasserstein float64 `json:"raw_wasserstein"`
}

// echo answers every request with no output: the features are inputs.
var echo = servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
	return &serving.Response{Model: req.Model, Version: req.Version}, nil
})

// Every statistic of a monitored window matches SciPy's (drift/testdata/
// golden/gen.py, pipeline.json) within 1e-6: on the raw samples when both
// are kept, on the histograms otherwise, where the histogram statistics
// also stay within their stated bound of the raw ones.
func TestGoldenPipeline(t *testing.T) {
	b, err := os.ReadFile("testdata/golden/pipeline.json")
	require.NoError(t, err)
	var g struct{ Cases []pipelineCase }
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Cases)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			ref, cur := c.Ref.Sample(), c.Cur.Sample()
			f := drift.NumericalFeature("x", drift.Input("x"))
			if c.Kind == "categorical" {
				f = drift.CategoricalFeature("x", drift.Input("x"))
			}
			pb, err := drift.NewProfileBuilder("m", "1", []drift.Feature{f})
			require.NoError(t, err)
			for _, v := range ref {
				if c.Kind == "categorical" {
					require.NoError(t, pb.AddCategory("x", c.Names[int(v)]))
				} else {
					require.NoError(t, pb.Add("x", v))
				}
			}
			prof, err := pb.Profile()
			require.NoError(t, err)
			fp := prof.Features[0]
			assert.Equal(t, c.RefCounts, fp.Counts)
			if c.Kind == "categorical" {
				assert.Equal(t, c.Categories, fp.Categories)
			} else {
				assert.Equal(t, c.Edges, fp.Edges, "bin edges, bit for bit")
				assert.Equal(t, c.Discrete, fp.Discrete)
			}

			m := newMonitor(t, drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(100000, 0)))
			p := m.Middleware()(echo)
			for lo := 0; lo < len(cur); lo += 64 {
				hi := min(lo+64, len(cur))
				var x serving.Tensor
				if c.Kind == "categorical" {
					s := make([]string, hi-lo)
					for i := range s {
						s[i] = c.Names[int(cur[lo+i])]
					}
					x, err = serving.NewStrings("x", []int64{int64(hi - lo)}, s)
				} else {
					x, err = serving.NewTensor("x", []int64{int64(hi - lo)}, cur[lo:hi])
				}
				require.NoError(t, err)
				_, err = p.Predict(context.Background(), &serving.Request{Model: "m", Version: "1", Inputs: []serving.Tensor{x}})
				require.NoError(t, err)
			}
			snap, err := m.Snapshot(context.Background(), "m", "1")
			require.NoError(t, err)
			assert.Equal(t, c.CurCounts, snap.Features[0].Counts)
			res, err := drift.Evaluate(prof, snap)
			require.NoError(t, err)
			fr := res.Features[0]
			if c.Kind == "numerical" {
				assert.Equal(t, c.Exact, fr.Exact)
			}
			require.Len(t, fr.Statistics, len(c.Statistics))
			for _, v := range fr.Statistics {
				want, ok := c.Statistics[string(v.Statistic)]
				require.True(t, ok, "unexpected statistic %s", v.Statistic)
				assert.InDelta(t, want.Value, v.Value, 1e-6*max(1, math.Abs(want.Value)), "%s", v.Statistic)
				if want.P != nil {
					assert.InDelta(t, *want.P, v.PValue, 1e-6, "%s p-value", v.Statistic)
				}
				raw := map[drift.Statistic]float64{drift.KS: c.RawKS, drift.Wasserstein: c.RawWasserstein}
				if r, ok := raw[v.Statistic]; ok && c.Kind == "numerical" {
					if c.Exact {
						assert.Zero(t, v.Bound, "%s is exact", v.Statistic)
					}
					assert.LessOrEqual(t, math.Abs(v.Value-r), v.Bound+1e-12,
						"%s: histogram %v, raw %v, stated bound %v", v.Statistic, v.Value, r, v.Bound)
				}
			}
		})
	}
}

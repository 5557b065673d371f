package report_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/report"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestQualityPage(t *testing.T) {
	qm := qualitySection(t)
	srv := httptest.NewServer(report.Handler(report.Quality(qm)))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	page := string(body)
	for _, want := range []string{"<title>Model quality report</title>", "version 2", `<polygon class="band"`, "<polyline", "roc_auc",
		"realized accuracy", "Quality alerts", "predictions observed"} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, "fraud<b>", "names are escaped")
	assert.NotContains(t, page, "Alerts, newest first", "no drift part without a drift source")
}

// Names from traffic are escaped: a version named with markup shows as
// text.
func TestQualityPageEscapes(t *testing.T) {
	qm, err := quality.NewMonitor(quality.WithTask("m", quality.BinaryTask("score")),
		quality.WithWindow(quality.CountWindow(2)), quality.WithMinSamples(1))
	require.NoError(t, err)
	defer qm.Close()
	p := qm.Middleware()(servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		out := req.Inputs[0]
		out.Name = "score"
		return &serving.Response{Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{out}}, nil
	}))
	x, _ := serving.NewTensor("x", []int64{2}, []float64{0.2, 0.9})
	_, err = p.Predict(context.Background(), &serving.Request{ID: "a", Model: "m", Version: `<script>alert(1)</script>`, Inputs: []serving.Tensor{x}})
	require.NoError(t, err)
	require.NoError(t, qm.Flush(context.Background()))
	var b strings.Builder
	require.NoError(t, report.WriteHTML(&b, report.Quality(qm)))
	assert.NotContains(t, b.String(), "<script>")
	assert.Contains(t, b.String(), "&lt;script&gt;")
}

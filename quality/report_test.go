package quality_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/serving"
)

// reportMonitor has three windows of a binary model whose version name is
// hostile markup, the last two under concept shift and labelled, so the
// report has estimates, realized values, breaches and alerts to draw.
func reportMonitor(t testing.TB) *quality.Monitor {
	t.Helper()
	ref := reference(t, 5000)
	m := newMonitor(t, quality.WithReference(ref), quality.WithWindow(quality.CountWindow(500)), quality.WithQueue(1<<14))
	p := m.Middleware()(echo)
	w := newWorld(8)
	for i, g := range []regime{base, {0, 1, 1, true}, {0, 1, 1, true}} {
		s, y := w.draw(g, 500)
		prefix := fmt.Sprintf("w%d-", i)
		for j := range s {
			x, _ := serving.NewTensor("x", []int64{1}, s[j:j+1])
			_, err := p.Predict(context.Background(), &serving.Request{ID: fmt.Sprint(prefix, j), Model: "m", Version: "1", Inputs: []serving.Tensor{x}})
			require.NoError(t, err)
		}
		labelAll(t, m, prefix, y)
	}
	require.NoError(t, m.Flush(context.Background()))
	return m
}

func TestReportPage(t *testing.T) {
	m := reportMonitor(t)
	var b bytes.Buffer
	require.NoError(t, m.WriteHTML(&b))
	page := b.String()
	for _, want := range []string{"Model quality report", "version 1", "<polygon class=\"band\"", "<polyline", "roc_auc",
		"realized accuracy", "Quality alerts", "divergence"} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, "<script")

	h, err := m.ReportHTML()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(h), "<style>"))
	assert.Contains(t, string(h), `<section class="version quality"`)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, string(body), "Model quality report")
	resp, err = http.Post(srv.URL, "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	path := filepath.Join(t.TempDir(), "quality.html")
	require.NoError(t, m.WriteReportFile(path))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Positive(t, st.Size())
}

// Names from traffic are escaped: a version named with markup shows as
// text.
func TestReportEscapes(t *testing.T) {
	m := newMonitor(t, binary, quality.WithWindow(quality.CountWindow(2)), quality.WithMinSamples(1))
	p := m.Middleware()(echo)
	x, _ := serving.NewTensor("x", []int64{2}, []float64{0.2, 0.9})
	_, err := p.Predict(context.Background(), &serving.Request{ID: "a", Model: "m", Version: `<script>alert(1)</script>`, Inputs: []serving.Tensor{x}})
	require.NoError(t, err)
	require.NoError(t, m.Flush(context.Background()))
	h, err := m.ReportHTML()
	require.NoError(t, err)
	assert.NotContains(t, string(h), "<script>")
	assert.Contains(t, string(h), "&lt;script&gt;")
}

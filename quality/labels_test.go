package quality_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal(b, &e), "an error body is JSON: %s", b)
		require.NotEmpty(t, e.Error)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(b)
}

// POST …/labels: the model from the path, labels as booleans, numbers or
// class names; bad input gets a 4xx with a JSON error and takes nothing.
func TestLabelsHandler(t *testing.T) {
	m := newMonitor(t, binary, quality.WithTask("c", quality.MulticlassTask("score", "cat", "dog", "bird")), quality.WithDetectors())
	p := m.Middleware()(echo)
	feed(t, p, "1", "r", 1, []float64{0.9, 0.2, 0.6})
	x, _ := serving.NewTensor("x", []int64{1, 3}, []float64{0.1, 0.7, 0.2})
	_, err := p.Predict(context.Background(), &serving.Request{ID: "k1", Model: "c", Version: "1", Inputs: []serving.Tensor{x}})
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.Handle("POST /v2/models/{model}/labels", m.LabelsHandler())
	mux.Handle("/labels", m.LabelsHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/v2/models/m/labels"

	code, body := post(t, url, `{"labels": [{"id": "r0", "label": true}, {"id": "r1", "label": 0}, {"id": "nope", "label": false}]}`)
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"matched": 2, "unmatched": 1}`, body)
	code, body = post(t, srv.URL+"/labels", `{"model": "c", "labels": [{"id": "k1", "label": "dog"}]}`)
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"matched": 1, "unmatched": 0}`, body)

	for name, tc := range map[string]struct {
		url, body string
		code      int
		msg       string
	}{
		"not JSON":        {url, `{"labels": [`, 400, "want"},
		"unknown field":   {url, `{"labels": [], "extra": 1}`, 400, "extra"},
		"trailing data":   {url, `{"labels": []} {}`, 400, "after"},
		"twice":           {url, `{"labels": [], "labels": []}`, 400, "twice"},
		"binary label 2":  {url, `{"labels": [{"id": "r2", "label": true}, {"id": "r2", "label": 2}]}`, 400, "label 1 (id"},
		"null label":      {url, `{"labels": [{"id": "r2", "label": null}]}`, 400, "want true, false"},
		"no label":        {url, `{"labels": [{"id": "r2"}]}`, 400, "no \\\"label\\\""},
		"nested label":    {url, `{"labels": [{"id": "r2", "label": [1]}]}`, 400, "want true, false"},
		"labels object":   {url, `{"labels": {}}`, 400, "must be an array"},
		"no id":           {url, `{"labels": [{"label": true}]}`, 400, "no \\\"id\\\""},
		"empty id":        {url, `{"labels": [{"id": "", "label": true}]}`, 400, "no \\\"id\\\""},
		"unknown class":   {srv.URL + "/labels", `{"model": "c", "labels": [{"id": "k1", "label": "fish"}]}`, 400, "not a class"},
		"no model":        {srv.URL + "/labels", `{"labels": []}`, 400, "no model"},
		"models disagree": {url, `{"model": "c", "labels": []}`, 400, "names model"},
		"unknown model":   {srv.URL + "/v2/models/zz/labels", `{"labels": []}`, 404, "not watched"},
	} {
		code, body := post(t, tc.url, tc.body)
		assert.Equal(t, tc.code, code, name)
		assert.Contains(t, body, tc.msg, name)
	}
	assert.Equal(t, int64(3), m.Stats().Labels, "refused batches took nothing")

	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// A body over the limit is refused with 413 before it is decoded.
	big := bytes.Repeat([]byte(" "), quality.MaxLabelsBody+1)
	code, body = post(t, url, string(big))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Contains(t, body, "body over")
	var many strings.Builder
	many.WriteString(`{"labels": [`)
	for i := range quality.MaxLabels + 1 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"id":"%d","label":1}`, i)
	}
	many.WriteString(`]}`)
	code, _ = post(t, url, many.String())
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
}

// The handler's cost is bounded by the body: decoding a maximal body of
// labels allocates a small multiple of its size.
func TestLabelsHandlerAllocation(t *testing.T) {
	m := newMonitor(t, binary, quality.WithDetectors())
	h := m.LabelsHandler()
	var b strings.Builder
	b.WriteString(`{"labels": [`)
	for i := range 20000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"tx-%d","label":%d}`, i, i%2)
	}
	b.WriteString(`]}`)
	body := b.String()
	allocs := testing.Benchmark(func(bm *testing.B) {
		bm.ReportAllocs()
		for range bm.N {
			req := httptest.NewRequest(http.MethodPost, "/v2/models/m/labels", strings.NewReader(body))
			req.SetPathValue("model", "m")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				bm.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
	perByte := float64(allocs.AllocedBytesPerOp()) / float64(len(body))
	t.Logf("%d-byte body of 20,000 labels: %d bytes allocated (%.1f per body byte)", len(body), allocs.AllocedBytesPerOp(), perByte)
	assert.Less(t, perByte, 5.0)
}

// ReadLabels joins a labels file (JSON Lines and CSV through rowio) and
// ReadPredictions a batch job's output, so offline predictions get their
// realized metrics too; rows that do not decode are counted, not fatal.
func TestReadFiles(t *testing.T) {
	clk := quality.NewFakeClock(t0)
	m := newMonitor(t, binary, quality.WithWindow(quality.CountWindow(4)), quality.WithMinSamples(1), quality.WithDetectors(),
		quality.WithClock(clk), quality.WithLabelDelay(2*time.Hour))
	dir := t.TempDir()
	// A batch job's output: id (key), score, model, model_version, timestamp.
	var out bytes.Buffer
	ts := t0.Add(-time.Hour).UnixMicro()
	for i, s := range []float64{0.9, 0.8, 0.3, 0.1} {
		fmt.Fprintf(&out, `{"row": %d, "id": %d, "score": %g, "model": "m", "model_version": "7", "timestamp": %q}`+"\n",
			i, 100+i, s, time.UnixMicro(ts).UTC().Format(time.RFC3339Nano))
	}
	out.WriteString("{broken\n")
	pred := filepath.Join(dir, "part-000000.jsonl")
	require.NoError(t, os.WriteFile(pred, out.Bytes(), 0o644))
	r, err := rowio.Open(pred, 0, []rowio.Field{
		{Name: "id", Type: serving.Int64}, {Name: "score", Type: serving.FP64},
		{Name: "model_version", Type: serving.Bytes}, {Name: "timestamp", Type: serving.Int64, Timestamp: true}})
	require.NoError(t, err)
	res, err := m.ReadPredictions(context.Background(), "m", r, quality.JobColumns("score"))
	require.NoError(t, r.Close())
	require.NoError(t, err)
	assert.Equal(t, int64(4), res.Predictions)
	assert.Equal(t, int64(1), res.Bad)

	labels := filepath.Join(dir, "labels.csv")
	require.NoError(t, os.WriteFile(labels, []byte("id,label\n100,1\n101,0\n102,0\n103,zz\n999,1\n"), 0o644))
	r, err = rowio.Open(labels, 0, []rowio.Field{{Name: "id", Type: serving.Bytes}, {Name: "label", Type: serving.Bytes}})
	require.NoError(t, err)
	lres, err := m.ReadLabels(context.Background(), "m", r, "id", "label")
	require.NoError(t, r.Close())
	require.NoError(t, err)
	assert.Equal(t, quality.LabelResult{Matched: 3, Unmatched: 1}, lres.LabelResult)
	assert.Equal(t, int64(1), lres.Bad, "103's label zz")
	require.NotNil(t, lres.FirstBad)
	assert.Contains(t, lres.FirstBad.Err.Error(), "zz")

	require.NoError(t, m.Flush(context.Background()))
	rs := m.Results("m", "7")
	require.Len(t, rs, 1)
	acc, _ := rs[0].Metric(quality.Accuracy)
	require.NotNil(t, acc.Realized)
	assert.InDelta(t, 2.0/3, *acc.Realized, 1e-12, "100 right, 101 wrong, 102 right")
	require.NotNil(t, rs[0].Delay)
	assert.GreaterOrEqual(t, rs[0].Delay.P50, 3600.0, "the predictions' own timestamps, an hour before the labels")

	jl := filepath.Join(dir, "labels.jsonl")
	require.NoError(t, os.WriteFile(jl, []byte(`{"id":"100","fraud":true}`+"\n"), 0o644))
	r, err = rowio.Open(jl, 0, []rowio.Field{{Name: "id", Type: serving.Bytes}, {Name: "fraud", Type: serving.Bool}})
	require.NoError(t, err)
	defer r.Close()
	lres, err = m.ReadLabels(context.Background(), "m", r, "id", "fraud")
	require.NoError(t, err)
	assert.Equal(t, int64(1), lres.Matched)
}

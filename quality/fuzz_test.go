package quality_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/serving"
)

// FuzzLabelsHandler posts arbitrary bodies: the handler answers every one
// with 200 or a 4xx and a JSON error, never a panic or a 5xx, and what it
// accepts it takes whole.
func FuzzLabelsHandler(f *testing.F) {
	for _, s := range []string{
		`{"labels": [{"id": "r0", "label": true}, {"id": "r1", "label": 0}]}`,
		`{"model": "m", "labels": [{"id": "r0", "label": "dog"}]}`,
		`{"labels": [{"id": "r0", "label": 2}]}`, `{"labels": [`, `[]`, `{"labels": {}}`, ``, `null`,
		`{"labels": [{"id": "r0", "label": [1]}]}`, `{"labels": [{"id": 5, "label": 1}]}`,
	} {
		f.Add([]byte(s))
	}
	m, err := quality.NewMonitor(quality.WithTask("m", quality.BinaryTask("score")), quality.WithDetectors())
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	p := m.Middleware()(echo)
	for _, id := range []string{"r0", "r1"} {
		x, _ := serving.NewTensor("x", []int64{1}, []float64{0.7})
		p.Predict(context.Background(), &serving.Request{ID: id, Model: "m", Version: "1", Inputs: []serving.Tensor{x}})
	}
	h := m.LabelsHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v2/models/m/labels", bytes.NewReader(body))
		req.SetPathValue("model", "m")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
			if !strings.Contains(rec.Body.String(), `"matched"`) {
				t.Fatalf("200 without counts: %s", rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if !strings.HasPrefix(rec.Body.String(), `{"error":`) {
				t.Fatalf("%d without a JSON error: %s", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

// FuzzDecodeReference feeds the reference decoder arbitrary bytes: what it
// accepts survives a round trip and a monitor takes it.
func FuzzDecodeReference(f *testing.F) {
	ref := reference(f, 500)
	var buf bytes.Buffer
	if err := ref.Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"servekit.quality.reference/v1","model":"m","task":{"kind":"binary","output":"y"},"rows":2,"calibrators":[{"method":"none"}],"metrics":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := quality.DecodeReference(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := r.Encode(&out); err != nil {
			t.Fatalf("encode an accepted reference: %v", err)
		}
		if _, err := quality.DecodeReference(&out); err != nil {
			t.Fatalf("the encoding of an accepted reference is refused: %v", err)
		}
		m, err := quality.NewMonitor(quality.WithReference(r), quality.WithDetectors())
		if err != nil {
			t.Fatalf("a monitor refuses an accepted reference: %v", err)
		}
		m.Close()
	})
}

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// A Predictor that panics gets its client a 500 with a JSON error, not a
// dropped connection; the log has the panic and its stack, never the body.
func TestPanicIsAnInternalError(t *testing.T) {
	var logs bytes.Buffer
	h := httpapi.New(httpapi.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	boom := servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		panic("secret-internal-state")
	})
	if err := h.Handle("boom", boom); err != nil {
		t.Fatal(err)
	}
	body := `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["payload-marker"]}]}`
	for _, path := range []string{"/v2/models/boom/infer", "/v1/models/boom:predict"} {
		logs.Reset()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("%s: status %d, want 500", path, rec.Code)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s: body %q, want a JSON error", path, rec.Body)
		}
		if strings.Contains(e.Error, "secret-internal-state") {
			t.Errorf("%s: the client was shown the panic value: %q", path, e.Error)
		}
		var entry map[string]any
		if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
			t.Fatalf("%s: log %q: %v", path, logs.String(), err)
		}
		if entry["level"] != "ERROR" || entry["panic"] != "secret-internal-state" || entry["model"] != "boom" ||
			!strings.Contains(entry["stack"].(string), "panic_test.go") {
			t.Errorf("%s: log entry %v, want the panic, model and stack at ERROR", path, entry)
		}
		if strings.Contains(logs.String(), "payload-marker") {
			t.Errorf("%s: the request payload reached the log", path)
		}
	}
}

// http.ErrAbortHandler is net/http's way to abort a response: it passes.
func TestAbortHandlerPanicPasses(t *testing.T) {
	h := httpapi.New()
	_ = h.Handle("abort", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	body := `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v2/models/abort/infer", strings.NewReader(body)))
	t.Error("ServeHTTP returned")
}

package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestModelMetadataDevice: a model that says where it runs shows it as the
// "device" parameter of its metadata; one that does not says nothing.
func TestModelMetadataDevice(t *testing.T) {
	h := httpapi.New()
	onGPU := servingtest.Linear(2)
	md := onGPU.Metadata()
	md.Device = "cuda:1"
	onGPU.WithMetadata(md)
	if err := h.Handle("gpu", onGPU); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle("plain", servingtest.Linear(2)); err != nil {
		t.Fatal(err)
	}
	w := call(t, h, "GET", "/v2/models/gpu", "")
	var got struct {
		Name       string
		Parameters map[string]any
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("GET /v2/models/gpu: %d %s (%v)", w.Code, w.Body, err)
	}
	if got.Name != "gpu" || got.Parameters["device"] != "cuda:1" || len(got.Parameters) != 1 {
		t.Errorf("metadata %s: want parameters {\"device\":\"cuda:1\"}", w.Body)
	}
	if w := call(t, h, "GET", "/v2/models/plain", ""); w.Code != 200 || strings.Contains(w.Body.String(), "parameters") {
		t.Errorf("metadata of a model without a device: %d %s", w.Code, w.Body)
	}
}

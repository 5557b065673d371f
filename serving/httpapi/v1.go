package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// The V1 adapters (TF Serving REST, KServe V1, Vertex AI, SageMaker, Azure
// ML) speak {"instances": [...]} (row format) or {"inputs": ...} (columnar)
// and answer {"predictions": [...]} or {"outputs": ...}. They decode with
// the same scanner as V2 (v1decode.go).

// v1Path serves POST /v1/models/{name}:predict and
// /v1/models/{name}/versions/{v}:predict.
func (h *Handler) v1Path(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		writeError(w, serving.Errorf(serving.NotFound, "httpapi: no route for POST %s (want …:predict)", r.URL.Path), h.cfg.retryAfter)
		return
	}
	target, verb := rest[:i], rest[i+1:]
	if verb != "predict" {
		writeError(w, serving.Errorf(serving.Unimplemented, "httpapi: V1 %q is not supported; use predict", verb), h.cfg.retryAfter)
		return
	}
	name, version := target, ""
	if n := r.PathValue("name"); n != "" {
		name, version = n, target
	}
	h.predictV1(w, r, name, version)
}

// v1Status serves GET /v1/models/{name}: {"name": ..., "ready": ...}, 200 or 503.
func (h *Handler) v1Status(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ready, err := h.ModelReady(name, r.PathValue("version"))
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	b := append([]byte(`{"name":`), oipjson.AppendString(nil, name)...)
	if ready {
		writeJSON(w, http.StatusOK, append(b, `,"ready":true}`...))
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, append(b, `,"ready":false}`...))
}

func (h *Handler) predictV1(w http.ResponseWriter, r *http.Request, name, version string) {
	start := time.Now()
	t, bp, ok := h.begin(w, r, name, version)
	if !ok {
		return
	}
	defer oipjson.PutBuffer(bp)
	body := *bp
	if isV2Body(body) { // SageMaker and custom routes also take V2 bodies
		h.serveV2(w, r, t, bp, start)
		return
	}
	req, rows, err := oipjson.DecodeV1(body, t.Metadata(), h.cfg.lim)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	ctx, call, err := h.call(r, start, nil)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	res, err := h.srv.Infer(ctx, t, req, call)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	out := oipjson.Buffer()
	b := oipjson.AppendV1Response((*out)[:0], res.Outputs, rows, h.cfg.nonFinite)
	writeJSON(w, http.StatusOK, b)
	*out = b
	oipjson.PutBuffer(out)
}

// isV2Body spots a V2 request on a V1 route: "inputs" is a list of objects
// that carry a "datatype".
func isV2Body(body []byte) bool {
	i := bytes.Index(body, []byte(`"inputs"`))
	return i >= 0 && bytes.Contains(body[i:], []byte(`"datatype"`)) && !bytes.Contains(body, []byte(`"instances"`))
}

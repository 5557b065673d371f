package httpapi

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/servekit/servekit/serving"
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
	b := append([]byte(`{"name":`), appendString(nil, name)...)
	if ready {
		writeJSON(w, http.StatusOK, append(b, `,"ready":true}`...))
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, append(b, `,"ready":false}`...))
}

func (h *Handler) predictV1(w http.ResponseWriter, r *http.Request, name, version string) {
	p, answered, bp, ok := h.begin(w, r, name, version)
	if !ok {
		return
	}
	defer putBuf(bp)
	body := *bp
	if isV2Body(body) { // SageMaker and custom routes also take V2 bodies
		h.serveV2(w, r, p, name, answered, body)
		return
	}
	req, rows, err := h.decodeV1(body, p)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	req.Model, req.Version = name, answered
	req.Key = h.routingKey(r, nil)
	ctx, cancel, err := h.requestContext(r, nil)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	defer cancel()
	resp, err := h.predict(ctx, p, req)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	out := getBuf()
	b := appendV1Response((*out)[:0], resp.Outputs, rows, h.cfg.nonFinite)
	writeJSON(w, http.StatusOK, b)
	*out = b
	putBuf(out)
}

// isV2Body spots a V2 request on a V1 route: "inputs" is a list of objects
// that carry a "datatype".
func isV2Body(body []byte) bool {
	i := bytes.Index(body, []byte(`"inputs"`))
	return i >= 0 && bytes.Contains(body[i:], []byte(`"datatype"`)) && !bytes.Contains(body, []byte(`"instances"`))
}

// appendV1Response writes {"predictions": [...]} split by rows, or
// {"outputs": ...} for columnar requests. One output is written bare, several
// as an object by name.
func appendV1Response(b []byte, outs []serving.Tensor, rows bool, nf NonFinite) []byte {
	if !rows {
		b = append(b, `{"outputs":`...)
		b = appendByName(b, outs, func(b []byte, t serving.Tensor) []byte { return appendNested(b, t, t.Shape, 0, nf) })
		return append(b, "}\n"...)
	}
	b = append(b, `{"predictions":[`...)
	n := int64(0)
	if len(outs) > 0 && len(outs[0].Shape) > 0 {
		n = outs[0].Shape[0]
	}
	for r := range n {
		if r > 0 {
			b = append(b, ',')
		}
		b = appendByName(b, outs, func(b []byte, t serving.Tensor) []byte { return appendRow(b, t, r, nf) })
	}
	return append(b, "]}\n"...)
}

// appendByName appends the one output bare with value, or several as an
// object by name.
func appendByName(b []byte, outs []serving.Tensor, value func([]byte, serving.Tensor) []byte) []byte {
	if len(outs) == 1 {
		return value(b, outs[0])
	}
	b = append(b, '{')
	for i, t := range outs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.Name)
		b = append(b, ':')
		b = value(b, t)
	}
	return append(b, '}')
}

func appendRow(b []byte, t serving.Tensor, r int64, nf NonFinite) []byte {
	if len(t.Shape) == 0 || r >= t.Shape[0] {
		return append(b, "null"...)
	}
	per := 1
	for _, d := range t.Shape[1:] {
		per *= int(d)
	}
	return appendNested(b, t, t.Shape[1:], int(r)*per, nf)
}

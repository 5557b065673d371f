package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
)

// The V1 adapters (TF Serving REST, KServe V1, Vertex AI, SageMaker, Azure
// ML) speak {"instances": [...]} (row format) or {"inputs": ...} (columnar)
// and answer {"predictions": [...]} or {"outputs": ...}. They decode with
// encoding/json and the same data scanner as V2: they are adapters, not the
// hot path.

type v1Request struct {
	Instances json.RawMessage `json:"instances"`
	Inputs    json.RawMessage `json:"inputs"`
}

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

// decodeV1 builds a request from a V1 body. rows reports the row format
// (answer with predictions split by row 0) rather than columnar.
func (h *Handler) decodeV1(body []byte, p serving.Predictor) (*serving.Request, bool, error) {
	if !utf8.Valid(body) {
		return nil, false, badRequest("request JSON is not valid UTF-8")
	}
	var vr v1Request
	if err := json.Unmarshal(body, &vr); err != nil {
		return nil, false, badRequest("malformed request JSON: %v", err)
	}
	md, _ := serving.MetadataOf(p)
	switch {
	case len(vr.Instances) > 0 && len(vr.Inputs) > 0:
		return nil, false, badRequest(`give "instances" or "inputs", not both`)
	case len(vr.Instances) > 0:
		req, err := h.decodeInstances(vr.Instances, md)
		return req, true, err
	case len(vr.Inputs) > 0:
		req, err := h.decodeColumns(vr.Inputs, md)
		return req, false, err
	}
	return nil, false, badRequest(`the body needs "instances" or "inputs"`)
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

// soleInput is the input a bare (unnamed) value feeds.
func soleInput(md serving.Metadata, raw []byte) (serving.TensorSpec, error) {
	switch len(md.Inputs) {
	case 1:
		return md.Inputs[0], nil
	case 0:
		return serving.TensorSpec{Name: "input", DataType: guessType(raw)}, nil
	}
	return serving.TensorSpec{}, badRequest("the model has %d inputs: name them in an object", len(md.Inputs))
}

func specFor(md serving.Metadata, name string, raw []byte) serving.TensorSpec {
	if s, ok := md.Input(name); ok {
		return s
	}
	return serving.TensorSpec{Name: name, DataType: guessType(raw)} // the model rejects unknown names
}

// guessType picks a datatype from the first value when the model has no
// metadata: strings are BYTES, true/false BOOL, numbers FP32.
func guessType(raw []byte) serving.DataType {
	raw = bytes.TrimLeft(raw, " \t\r\n[")
	switch {
	case len(raw) == 0:
		return serving.FP32
	case raw[0] == '"':
		return serving.Bytes
	case raw[0] == 't' || raw[0] == 'f':
		return serving.Bool
	}
	return serving.FP32
}

func (h *Handler) decodeColumns(raw json.RawMessage, md serving.Metadata) (*serving.Request, error) {
	req := &serving.Request{}
	if !isObject(raw) {
		spec, err := soleInput(md, raw)
		if err != nil {
			return nil, err
		}
		t, err := h.column(spec, raw)
		if err != nil {
			return nil, err
		}
		req.Inputs = []serving.Tensor{t}
		return req, nil
	}
	var cols map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cols); err != nil {
		return nil, badRequest("inputs: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(cols)) { // a stable order
		v := cols[name]
		t, err := h.column(specFor(md, name, v), v)
		if err != nil {
			return nil, err
		}
		req.Inputs = append(req.Inputs, t)
	}
	return req, nil
}

func (h *Handler) column(spec serving.TensorSpec, raw []byte) (serving.Tensor, error) {
	t, err := parseTensor(raw, spec.Name, spec.DataType, nil, h.cfg.maxElements)
	if err != nil {
		return serving.Tensor{}, badRequest("input %q: %v", spec.Name, err)
	}
	return t, nil
}

func (h *Handler) decodeInstances(raw json.RawMessage, md serving.Metadata) (*serving.Request, error) {
	var inst []json.RawMessage
	if err := json.Unmarshal(raw, &inst); err != nil {
		return nil, badRequest("instances must be a list: %v", err)
	}
	if len(inst) == 0 {
		return nil, badRequest("instances is empty")
	}
	// Per input, the rows in order; stacked into one tensor each.
	cols := map[string][]serving.Tensor{}
	var order []string
	add := func(spec serving.TensorSpec, v []byte) error {
		t, err := h.column(spec, v)
		if err != nil {
			return err
		}
		if _, ok := cols[spec.Name]; !ok {
			order = append(order, spec.Name)
		}
		// Each instance is one row: give it a leading dim of 1.
		t.Shape = append([]int64{1}, t.Shape...)
		cols[spec.Name] = append(cols[spec.Name], t)
		return nil
	}
	named := isObject(inst[0])
	for i, v := range inst {
		if isObject(v) != named {
			return nil, badRequest("instance %d: mix of named and unnamed instances", i)
		}
		if !named {
			spec, err := soleInput(md, v)
			if err != nil {
				return nil, err
			}
			if err := add(spec, v); err != nil {
				return nil, err
			}
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return nil, badRequest("instance %d: %v", i, err)
		}
		for _, name := range slices.Sorted(maps.Keys(obj)) {
			x := obj[name]
			if err := add(specFor(md, name, x), x); err != nil {
				return nil, err
			}
		}
	}
	req := &serving.Request{}
	for _, name := range order {
		if len(cols[name]) != len(inst) {
			return nil, badRequest("input %q is in %d of %d instances", name, len(cols[name]), len(inst))
		}
		t, err := serving.ConcatRows(cols[name])
		if err != nil {
			return nil, badRequest("instances of %q differ in shape: %v", name, err)
		}
		req.Inputs = append(req.Inputs, t)
	}
	return req, nil
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

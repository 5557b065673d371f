package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

func (h *Handler) serverMetadata(w http.ResponseWriter, r *http.Request) {
	name, version := h.srv.Info()
	if h.cfg.serverName != "" {
		name, version = h.cfg.serverName, h.cfg.serverVersion
	}
	b := append([]byte(`{"name":`), oipjson.AppendString(nil, name)...)
	b = append(b, `,"version":`...)
	b = oipjson.AppendString(b, version)
	b = append(b, `,"extensions":["binary_tensor_data"`...)
	for _, e := range h.srv.Extensions() {
		b = append(b, ',')
		b = oipjson.AppendString(b, e)
	}
	b = append(b, "]}"...)
	writeJSON(w, http.StatusOK, b)
}

// Health answers are the status code; the body is empty, as KServe's are.
func (h *Handler) live(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.Ready() {
		w.WriteHeader(http.StatusOK)
		return
	}
	h.notReady(w)
}

func (h *Handler) notReady(w http.ResponseWriter) {
	if h.cfg.retryAfter > 0 {
		setRetryAfter(w.Header(), h.cfg.retryAfter)
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

func (h *Handler) modelReady(w http.ResponseWriter, r *http.Request) {
	ready, err := h.ModelReady(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	if !ready {
		h.notReady(w)
		return
	}
	w.WriteHeader(http.StatusOK)
}

type specJSON struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
	// Parameters, like the model's below, is an extension of the schema:
	// an output's class labels (TensorSpec.Labels), in column order, as
	// the classification extension reports them.
	Parameters *specParams `json:"parameters,omitempty"`
}

type specParams struct {
	Labels []string `json:"labels,omitempty"`
}

type modelJSON struct {
	Name     string     `json:"name"`
	Versions []string   `json:"versions,omitempty"`
	Platform string     `json:"platform"`
	Inputs   []specJSON `json:"inputs"`
	Outputs  []specJSON `json:"outputs"`
	// Parameters is not in the protocol's model metadata schema; it
	// carries what the protocol has no field for (the device) in the
	// shape the protocol uses for parameters everywhere else. Clients
	// ignore members they do not know, and it is left out when empty.
	Parameters *modelParams `json:"parameters,omitempty"`
}

type modelParams struct {
	Device string `json:"device,omitempty"`
	// UnservedOutputs are the model's outputs the server cannot return
	// (Metadata.Unserved), each with why: the model serves the others.
	UnservedOutputs []unservedJSON `json:"unserved_outputs,omitempty"`
}

type unservedJSON struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func specs(s []serving.TensorSpec) []specJSON {
	out := make([]specJSON, len(s))
	for i, t := range s {
		out[i] = specJSON{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape}
		if len(t.Labels) > 0 {
			out[i].Parameters = &specParams{Labels: t.Labels}
		}
	}
	return out
}

func (h *Handler) modelMetadata(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	md, versions, err := h.ModelMetadata(name, version)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	m := modelJSON{Name: name, Versions: versions, Platform: md.Platform, Inputs: specs(md.Inputs), Outputs: specs(md.Outputs)}
	if md.Device != "" || len(md.Unserved) > 0 {
		m.Parameters = &modelParams{Device: md.Device}
		for _, u := range md.Unserved {
			m.Parameters.UnservedOutputs = append(m.Parameters.UnservedOutputs, unservedJSON{u.Name, u.Reason})
		}
	}
	b, _ := json.Marshal(m) // cannot fail: plain strings and ints
	writeJSON(w, http.StatusOK, b)
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	setBody(w.Header(), typeJSON, len(b))
	w.WriteHeader(status)
	w.Write(b)
}

func (h *Handler) infer(w http.ResponseWriter, r *http.Request) {
	h.inferModel(w, r, r.PathValue("name"), r.PathValue("version"))
}

func (h *Handler) inferModel(w http.ResponseWriter, r *http.Request, name, version string) {
	start := time.Now()
	if t, bp, ok := h.begin(w, r, name, version); ok {
		h.serveV2(w, r, t, bp, start)
		oipjson.PutBuffer(bp)
	}
}

// begin resolves the model and reads the body into a pooled buffer (the
// caller puts it back), or answers with the error: an unknown model is
// 404 before its body is read.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, name, version string) (oip.Target, *[]byte, bool) {
	if version == "" && h.cfg.versionHeader != "" {
		version = header(r.Header, h.cfg.versionHeader)
	}
	t, err := h.srv.Resolve(name, version)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return oip.Target{}, nil, false
	}
	bp, err := readBody(w, r, h.cfg.maxBody)
	if err != nil {
		writeError(w, bodyError(err), h.cfg.retryAfter)
		return oip.Target{}, nil, false
	}
	return t, bp, true
}

// serveV2 answers a V2 body already read into the pooled buffer bp (from
// the V2 routes, or a V2 body on a V1 route): decode, the protocol's infer
// steps (oip.Server.Infer), encode. The decoder copies what it keeps, so
// the answer is written into the body's buffer: one pooled buffer a
// request, not two. bp stays the caller's to put back.
func (h *Handler) serveV2(w http.ResponseWriter, r *http.Request, t oip.Target, bp *[]byte, start time.Time) {
	c := new(inferCall)
	if err := h.decodeBody(r, *bp, c); err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	ctx, call, err := h.call(r, start, &c.timing)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	call.Classify = c.Classifications()
	res, err := h.srv.Infer(ctx, t, &c.Request, call)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	h.writeInferResponse(w, c, t.Model, res, bp)
}

func (h *Handler) decodeBody(r *http.Request, body []byte, c *inferCall) error {
	n, err := headerLength(r, len(body))
	if err != nil {
		return err
	}
	return oipjson.DecodeInferRequest(&c.InferRequest, body, n, h.cfg.lim)
}

// call reads what the infer steps take from the headers: the W3C trace
// context, the routing key and the deadline (the Timeout and Grpc-Timeout
// headers, capped by WithMaxTimeout).
func (h *Handler) call(r *http.Request, start time.Time, timing *serving.Timing) (context.Context, oip.Call, error) {
	c := oip.Call{Start: start, MaxTimeout: h.cfg.maxTimeout, Timing: timing}
	if h.cfg.keyHeader != "" {
		c.Key = header(r.Header, h.cfg.keyHeader)
	}
	d, err := h.headerTimeout(r)
	if err != nil {
		return nil, c, err
	}
	c.Timeout = d
	return otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header)), c, nil
}

// bodyError gives a body read failure its code: too large stays a
// MaxBytesError (413), anything else is the client's fault.
func bodyError(err error) error {
	if _, ok := err.(*http.MaxBytesError); ok {
		return serving.NewError(serving.InvalidArgument, err) // Status sees the MaxBytesError: 413
	}
	return serving.Errorf(serving.InvalidArgument, "httpapi: reading body: %w", err)
}

// headerTimeout is the earliest of the timeout header (a Go duration) and
// Grpc-Timeout (gRPC's format), or 0.
func (h *Handler) headerTimeout(r *http.Request) (time.Duration, error) {
	var d time.Duration
	if h.cfg.timeoutHeader != "" {
		if v := header(r.Header, h.cfg.timeoutHeader); v != "" {
			t, err := ParseTimeout(v)
			if err != nil {
				return 0, err
			}
			d = t
		}
	}
	if v := header(r.Header, "Grpc-Timeout"); v != "" {
		t, err := ParseGRPCTimeout(v)
		if err != nil {
			return 0, err
		}
		if d == 0 || t < d {
			d = t
		}
	}
	return d, nil
}

// ParseTimeout reads a timeout header value: a positive Go duration
// ("250ms", "2s", "1m30s").
func ParseTimeout(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	return 0, badRequest("timeout %q: want a positive duration such as 250ms", v)
}

var grpcUnits = map[byte]time.Duration{
	'H': time.Hour, 'M': time.Minute, 'S': time.Second,
	'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond,
}

// ParseGRPCTimeout reads a Grpc-Timeout header value: up to 8 digits and a
// unit, H M S m u n ("250m" is 250 milliseconds).
func ParseGRPCTimeout(v string) (time.Duration, error) {
	if len(v) >= 2 && len(v) <= 9 {
		n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
		unit := grpcUnits[v[len(v)-1]]
		if err == nil && n > 0 && unit > 0 {
			return time.Duration(n) * unit, nil
		}
	}
	return 0, badRequest("grpc-timeout %q: want digits and a unit (H M S m u n), such as 250m", v)
}

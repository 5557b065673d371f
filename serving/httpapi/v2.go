package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/servekit/servekit/serving"
)

func (h *Handler) serverMetadata(w http.ResponseWriter, r *http.Request) {
	b := append([]byte(`{"name":`), appendString(nil, h.cfg.serverName)...)
	b = append(b, `,"version":`...)
	b = appendString(b, h.cfg.serverVersion)
	b = append(b, `,"extensions":["binary_tensor_data","classification","parameters"]}`...)
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
	setBody(w.Header(), "application/json", len(b))
	w.WriteHeader(status)
	w.Write(b)
}

func (h *Handler) infer(w http.ResponseWriter, r *http.Request) {
	h.inferModel(w, r, r.PathValue("name"), r.PathValue("version"))
}

func (h *Handler) inferModel(w http.ResponseWriter, r *http.Request, name, version string) {
	if p, answered, bp, ok := h.begin(w, r, name, version); ok {
		h.serveV2(w, r, p, name, answered, *bp)
		putBuf(bp)
	}
}

// begin finds the model and reads the body into a pooled buffer (the
// caller puts it back), or answers with the error.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, name, version string) (serving.Predictor, string, *[]byte, bool) {
	if version == "" && h.cfg.versionHeader != "" {
		version = header(r.Header, h.cfg.versionHeader)
	}
	p, answered, err := h.Lookup(name, version)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return nil, "", nil, false
	}
	bp, err := readBody(w, r, h.cfg.maxBody)
	if err != nil {
		writeError(w, bodyError(err), h.cfg.retryAfter)
		return nil, "", nil, false
	}
	return p, answered, bp, true
}

// serveV2 answers a V2 body already read (from the V2 routes, or a V2 body
// on a V1 route); answered is the version the lookup resolved to.
func (h *Handler) serveV2(w http.ResponseWriter, r *http.Request, p serving.Predictor, name, answered string, body []byte) {
	d, err := h.decodeBody(r, body) // copies what it keeps
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	d.req.Model, d.req.Version = name, answered // the resolved version: one cache key per version, however it was addressed
	d.req.Key = h.routingKey(r, d.req.Params)
	ctx, cancel, err := h.requestContext(r, d.req.Params)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	defer cancel()
	resp, err := h.predict(ctx, p, &d.req)
	if err != nil {
		writeError(w, err, h.cfg.retryAfter)
		return
	}
	if resp.Version != "" {
		answered = resp.Version
	}
	if len(d.classes) > 0 {
		if resp, err = classify(p, &d.req, resp, d.classes); err != nil {
			writeError(w, err, h.cfg.retryAfter)
			return
		}
	}
	h.writeInferResponse(w, d, name, answered, resp)
}

// classify answers the outputs asked for with "classification": k by their
// top k classes (serving.ClassifyOutputs, with the labels of p's metadata),
// in a new Response: resp may be a cached answer others share.
func classify(p serving.Predictor, req *serving.Request, resp *serving.Response, cs []serving.Classification) (*serving.Response, error) {
	outs, err := serving.SelectOutputs(req, resp)
	if err != nil {
		return nil, err
	}
	md, _ := serving.MetadataOf(p)
	if outs, err = serving.ClassifyOutputs(md, outs, cs); err != nil {
		return nil, err
	}
	c := *resp
	c.Outputs = outs
	return &c, nil
}

func (h *Handler) decodeBody(r *http.Request, body []byte) (*decoded, error) {
	n, err := headerLength(r, len(body))
	if err != nil {
		return nil, err
	}
	return decodeV2(body, n, h.cfg.lim)
}

// routingKey is the "routing_key" parameter, else the routing key header.
func (h *Handler) routingKey(r *http.Request, params serving.Params) string {
	if k, ok := params[serving.ParamRoutingKey].(string); ok {
		return k
	}
	if h.cfg.keyHeader != "" {
		return header(r.Header, h.cfg.keyHeader)
	}
	return ""
}

// bodyError gives a body read failure its code: too large stays a
// MaxBytesError (413), anything else is the client's fault.
func bodyError(err error) error {
	if _, ok := err.(*http.MaxBytesError); ok {
		return serving.NewError(serving.InvalidArgument, err) // Status sees the MaxBytesError: 413
	}
	return serving.Errorf(serving.InvalidArgument, "httpapi: reading body: %w", err)
}

// predict checks readiness, then asks p; a not-ready model is Unavailable.
// A panic anywhere in the chain becomes an Internal error (500) and is
// logged with its stack: left to net/http, it would drop the connection
// and the client would get no answer at all. The client is told only that
// the model failed; the panic value may hold internals.
func (h *Handler) predict(ctx context.Context, p serving.Predictor, req *serving.Request) (resp *serving.Response, err error) {
	if !serving.IsReady(p) {
		return nil, serving.Errorf(serving.Unavailable, "httpapi: model %q is not ready", req.Model)
	}
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler { // the handler's own way out: keep it
				panic(r)
			}
			log := h.cfg.log
			if log == nil {
				log = slog.Default()
			}
			log.Error("httpapi: predictor panicked", "model", req.Model, "version", req.Version,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, serving.Errorf(serving.Internal, "httpapi: model %q failed with an internal error", req.Model)
		}
	}()
	resp, err = p.Predict(ctx, req)
	if err == nil && resp == nil {
		err = serving.Errorf(serving.Internal, "httpapi: model %q returned no response", req.Model)
	}
	return resp, err
}

// requestContext adds the W3C trace context from the headers and the
// earliest of the deadlines: parameters.timeout (µs), the timeout header and
// WithMaxTimeout.
func (h *Handler) requestContext(r *http.Request, params serving.Params) (context.Context, context.CancelFunc, error) {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	d := h.cfg.maxTimeout
	if t, ok := params.Timeout(); ok && (d == 0 || t < d) {
		d = t
	}
	if h.cfg.timeoutHeader != "" {
		if v := header(r.Header, h.cfg.timeoutHeader); v != "" {
			t, err := ParseTimeout(v)
			if err != nil {
				return nil, nil, err
			}
			if d == 0 || t < d {
				d = t
			}
		}
	}
	if v := header(r.Header, "Grpc-Timeout"); v != "" {
		t, err := ParseGRPCTimeout(v)
		if err != nil {
			return nil, nil, err
		}
		if d == 0 || t < d {
			d = t
		}
	}
	if d > 0 {
		ctx, cancel := context.WithTimeout(ctx, d)
		return ctx, cancel, nil
	}
	return ctx, func() {}, nil
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

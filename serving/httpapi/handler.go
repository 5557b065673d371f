package httpapi

import (
	"net/http"
	"strings"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// Handler serves the models of an oip.Server over the Open Inference
// Protocol (KServe V2) REST API, Triton's extensions and the V1 adapters.
// Build it with New; register models with Handle (or on the Server given
// WithServer). It is safe for concurrent use, and models may be added or
// removed while it serves.
type Handler struct {
	cfg config
	srv *oip.Server
	mux *http.ServeMux
	v2  string // prefix + "/v2/models/": the infer fast path; "" when off
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler serving the models of the Server given WithServer,
// or of a Server of its own. It panics, as http.ServeMux does, when
// configured routes conflict.
func New(opts ...Option) *Handler {
	h := &Handler{cfg: defaultConfig()}
	for _, o := range opts {
		o.apply(&h.cfg)
	}
	h.srv = h.cfg.server
	if h.srv == nil {
		h.srv = oip.NewServer(oip.WithLogger(h.cfg.log))
	}
	h.mux = h.routes()
	h.v2 = h.cfg.prefix + "/v2/models/"
	for _, rt := range h.cfg.extra {
		if strings.HasPrefix(rt.path, h.v2) { // a custom route could shadow an infer path
			h.v2 = ""
		}
	}
	return h
}

// Server returns the Server whose models h serves, to serve them over
// gRPC too (grpcapi.New(h) takes it from there) or to register models.
func (h *Handler) Server() *oip.Server { return h.srv }

// Handle registers p as model name on h's Server (oip.Server.Handle):
// with Version it is that version; the first Predictor of a name, or one
// given Default, answers requests that name no version.
func (h *Handler) Handle(name string, p serving.Predictor, opts ...ModelOption) error {
	return h.srv.Handle(name, p, opts...)
}

// Remove unregisters a version of a model, or the whole model when version
// is "" (oip.Server.Remove). It does not close the Predictor.
func (h *Handler) Remove(name, version string) bool { return h.srv.Remove(name, version) }

// Models returns the registered model names, sorted.
func (h *Handler) Models() []string { return h.srv.Models() }

// Lookup finds the Predictor that answers model name at version ("" = the
// default) and the version it answers as (oip.Server.Lookup).
func (h *Handler) Lookup(name, version string) (serving.Predictor, string, error) {
	return h.srv.Lookup(name, version)
}

// ModelReady reports whether model name at version ("" = the default) can
// serve; unknown names and versions are NotFound errors.
func (h *Handler) ModelReady(name, version string) (bool, error) {
	return h.srv.ModelReady(name, version)
}

// ModelMetadata returns the metadata of model name at version ("" = the
// default) and the versions the model has.
func (h *Handler) ModelMetadata(name, version string) (serving.Metadata, []string, error) {
	return h.srv.ModelMetadata(name, version)
}

// Ready reports whether every registered Predictor is ready: the server's
// readiness (GET /v2/health/ready).
func (h *Handler) Ready() bool { return h.srv.Ready() }

// ServeHTTP implements http.Handler. Infer requests on plain paths skip the
// ServeMux (its matching costs as much as a third of the JSON decode); any
// other path, or one the mux would clean or unescape, goes through it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.v2 != "" && r.Method == http.MethodPost && r.URL.RawPath == "" {
		if name, version, ok := inferPath(r.URL.Path, h.v2); ok {
			h.inferModel(w, r, name, version)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// inferPath splits base+"{name}/infer" or base+"{name}/versions/{v}/infer",
// for clean segments only.
func inferPath(p, base string) (name, version string, ok bool) {
	rest, ok := strings.CutPrefix(p, base)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutSuffix(rest, "/infer")
	if !ok {
		return "", "", false
	}
	name, version, versioned := strings.Cut(rest, "/versions/")
	if !plainSegment(name) || versioned && !plainSegment(version) {
		return "", "", false
	}
	return name, version, true
}

func plainSegment(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.Contains(s, "/")
}

func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	p := h.cfg.prefix
	mux.HandleFunc("GET "+p+"/v2", h.serverMetadata)
	mux.HandleFunc("GET "+p+"/v2/health/live", h.live)
	mux.HandleFunc("GET "+p+"/v2/health/ready", h.ready)
	mux.HandleFunc("GET "+p+"/v2/models/{name}", h.modelMetadata)
	mux.HandleFunc("GET "+p+"/v2/models/{name}/versions/{version}", h.modelMetadata)
	mux.HandleFunc("GET "+p+"/v2/models/{name}/ready", h.modelReady)
	mux.HandleFunc("GET "+p+"/v2/models/{name}/versions/{version}/ready", h.modelReady)
	mux.HandleFunc("POST "+p+"/v2/models/{name}/infer", h.infer)
	mux.HandleFunc("POST "+p+"/v2/models/{name}/versions/{version}/infer", h.infer)
	// Triton's extensions: model configuration, statistics, repository.
	mux.HandleFunc("GET "+p+"/v2/models/{name}/config", h.modelConfig)
	mux.HandleFunc("GET "+p+"/v2/models/{name}/versions/{version}/config", h.modelConfig)
	mux.HandleFunc("GET "+p+"/v2/models/stats", h.statistics)
	mux.HandleFunc("GET "+p+"/v2/models/{name}/stats", h.statistics)
	mux.HandleFunc("GET "+p+"/v2/models/{name}/versions/{version}/stats", h.statistics)
	mux.HandleFunc("POST "+p+"/v2/repository/index", h.repositoryIndex)
	mux.HandleFunc("POST "+p+"/v2/repository/models/{name}/load", h.repositoryLoad)
	mux.HandleFunc("POST "+p+"/v2/repository/models/{name}/unload", h.repositoryUnload)
	if h.cfg.v1 {
		// {name}:predict is not a ServeMux wildcard (a wildcard is a whole
		// segment), so the V1 handlers split the verb off themselves.
		mux.HandleFunc("POST "+p+"/v1/models/{rest}", h.v1Path)
		mux.HandleFunc("POST "+p+"/v1/models/{name}/versions/{rest}", h.v1Path)
		mux.HandleFunc("GET "+p+"/v1/models/{name}", h.v1Status)
		mux.HandleFunc("GET "+p+"/v1/models/{name}/versions/{version}", h.v1Status)
	}
	for _, rt := range h.cfg.extra {
		switch rt.kind {
		case routeLive:
			mux.HandleFunc(rt.method+" "+rt.path, h.live)
		case routeReady:
			mux.HandleFunc(rt.method+" "+rt.path, h.ready)
		case routePredictV1:
			name := rt.model
			mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { h.predictV1(w, r, name, "") })
		case routeInferV2:
			name := rt.model
			mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { h.inferModel(w, r, name, "") })
		}
	}
	fb := h.cfg.fallback
	if fb == nil {
		fb = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, serving.Errorf(serving.NotFound, "httpapi: no route for %s %s", r.Method, r.URL.Path), h.cfg.retryAfter)
		})
	}
	mux.Handle("/", fb)
	return mux
}

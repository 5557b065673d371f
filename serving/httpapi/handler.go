package httpapi

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/servekit/servekit/serving"
)

// Handler serves registered models over the Open Inference Protocol (KServe
// V2) REST API and the V1 adapters. Build it with New, register models with
// Handle; it is safe for concurrent use, and models may be added or removed
// while it serves.
type Handler struct {
	cfg    config
	mux    *http.ServeMux
	v2     string                            // prefix + "/v2/models/": the infer fast path; "" when off
	mu     sync.Mutex                        // serialises writers of models
	models atomic.Pointer[map[string]*model] // copy-on-write; readers never lock
}

// model is immutable once published.
type model struct {
	name       string
	def        serving.Predictor
	defVersion string
	versions   map[string]serving.Predictor
	order      []string // versions in registration order
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler with no models. It panics, as http.ServeMux does,
// when configured routes conflict.
func New(opts ...Option) *Handler {
	h := &Handler{cfg: defaultConfig()}
	for _, o := range opts {
		o.apply(&h.cfg)
	}
	empty := map[string]*model{}
	h.models.Store(&empty)
	h.mux = h.routes()
	h.v2 = h.cfg.prefix + "/v2/models/"
	for _, rt := range h.cfg.extra {
		if strings.HasPrefix(rt.path, h.v2) { // a custom route could shadow an infer path
			h.v2 = ""
		}
	}
	return h
}

// Handle registers p as model name. With Version it is that version; the
// first Predictor of a name, or one given Default, answers requests that name
// no version. Registering a version twice is an error; Remove it first.
func (h *Handler) Handle(name string, p serving.Predictor, opts ...ModelOption) error {
	if name == "" || p == nil {
		return serving.Errorf(serving.InvalidArgument, "httpapi: Handle needs a model name and a Predictor")
	}
	var mc modelConfig
	for _, o := range opts {
		o.applyModel(&mc)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := *h.models.Load()
	m := &model{name: name, versions: map[string]serving.Predictor{}}
	if old, ok := cur[name]; ok {
		*m = *old
		m.versions = maps.Clone(old.versions)
		m.order = slices.Clone(old.order)
	}
	if mc.version != "" {
		if _, dup := m.versions[mc.version]; dup {
			return serving.Errorf(serving.InvalidArgument, "httpapi: model %q version %q already registered", name, mc.version)
		}
		m.versions[mc.version] = p
		m.order = append(m.order, mc.version)
	} else if m.def != nil && !mc.isDefault {
		return serving.Errorf(serving.InvalidArgument, "httpapi: model %q already has a default Predictor", name)
	}
	if m.def == nil || mc.isDefault || mc.version == "" {
		m.def, m.defVersion = p, mc.version
	}
	next := maps.Clone(cur)
	next[name] = m
	h.models.Store(&next)
	return nil
}

// Remove unregisters a version of a model, or the whole model when version is
// "". It reports whether anything was removed. It does not close the
// Predictor: the caller owns it (serving.Close).
func (h *Handler) Remove(name, version string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := *h.models.Load()
	old, ok := cur[name]
	if !ok {
		return false
	}
	next := maps.Clone(cur)
	if version == "" {
		delete(next, name)
		h.models.Store(&next)
		return true
	}
	if _, ok := old.versions[version]; !ok {
		return false
	}
	m := *old
	m.versions = maps.Clone(old.versions)
	delete(m.versions, version)
	m.order = slices.DeleteFunc(slices.Clone(old.order), func(v string) bool { return v == version })
	if m.defVersion == version {
		m.def, m.defVersion = nil, ""
		if len(m.order) > 0 {
			m.defVersion = m.order[0]
			m.def = m.versions[m.defVersion]
		}
	}
	if m.def == nil {
		delete(next, name)
	} else {
		next[name] = &m
	}
	h.models.Store(&next)
	return true
}

// Models returns the registered model names, sorted.
func (h *Handler) Models() []string {
	return slices.Sorted(maps.Keys(*h.models.Load()))
}

// Lookup finds the Predictor that answers model name at version ("" = the
// default) and the version it answers as. A version not registered on its own
// is looked for in a default Predictor that holds versions itself
// (serving.Versioned, a rollout router): the answer is then that default,
// to be called with Request.Version set to version, so the whole chain sees
// the request. Unknown names and versions are NotFound errors.
func (h *Handler) Lookup(name, version string) (serving.Predictor, string, error) {
	p, _, v, err := h.resolve(name, version)
	return p, v, err
}

// resolve is Lookup plus the Predictor that speaks for the version's own
// readiness and metadata (the pinned Predictor of a serving.Versioned).
func (h *Handler) resolve(name, version string) (call, self serving.Predictor, answered string, err error) {
	m, ok := (*h.models.Load())[name]
	if !ok {
		return nil, nil, "", serving.Errorf(serving.NotFound, "httpapi: unknown model %q", name)
	}
	if version == "" {
		return m.def, m.def, m.defVersion, nil
	}
	if p, ok := m.versions[version]; ok {
		return p, p, version, nil
	}
	if vs, ok := serving.VersionsOf(m.def); ok {
		if pinned, ok := vs.Version(version); ok {
			return m.def, pinned, version, nil
		}
	}
	return nil, nil, "", serving.Errorf(serving.NotFound, "httpapi: model %q has no version %q", name, version)
}

// ModelReady reports whether model name at version ("" = the default) can
// serve; unknown names and versions are NotFound errors.
func (h *Handler) ModelReady(name, version string) (bool, error) {
	_, self, _, err := h.resolve(name, version)
	if err != nil {
		return false, err
	}
	return serving.IsReady(self), nil
}

// ModelMetadata returns the metadata of model name at version ("" = the
// default) and the versions the model has: the one asked for, or every
// version registered or held by a versioned default.
func (h *Handler) ModelMetadata(name, version string) (serving.Metadata, []string, error) {
	_, self, _, err := h.resolve(name, version)
	if err != nil {
		return serving.Metadata{}, nil, err
	}
	md, _ := serving.MetadataOf(self)
	if version != "" {
		return md, []string{version}, nil
	}
	return md, h.versions(name), nil
}

// versions lists a model's registered versions, then those its default
// holds that were not registered on their own.
func (h *Handler) versions(name string) []string {
	m, ok := (*h.models.Load())[name]
	if !ok {
		return nil
	}
	out := slices.Clone(m.order)
	if vs, ok := serving.VersionsOf(m.def); ok {
		for _, v := range vs.Versions() {
			if _, dup := m.versions[v]; !dup {
				out = append(out, v)
			}
		}
	}
	return out
}

// Ready reports whether every registered Predictor is ready: the server's
// readiness (GET /v2/health/ready).
func (h *Handler) Ready() bool {
	for _, m := range *h.models.Load() {
		if !serving.IsReady(m.def) {
			return false
		}
		for _, p := range m.versions {
			if !serving.IsReady(p) {
				return false
			}
		}
	}
	return true
}

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

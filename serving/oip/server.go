package oip

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/servekit/servekit/serving"
)

// Server is the transport-neutral core of an inference server: the model
// table (names, versions, the default version, readiness, metadata,
// configuration, statistics), the infer steps, and model repository
// control. Transports (httpapi, grpcapi) serve one Server, so a model
// registered once answers over every protocol with the same resolution
// rules and counts in the same statistics, as Triton's in-process server
// sits under its HTTP and gRPC front ends.
//
// Build it with NewServer and register models with Handle. It is safe for
// concurrent use; Handle and Remove may run while it serves (readers see
// an immutable snapshot, never a lock). It starts no goroutines and holds
// nothing to close: the Predictors are the caller's.
type Server struct {
	cfg    config
	mu     sync.Mutex                        // serialises writers of models
	models atomic.Pointer[map[string]*model] // copy-on-write; readers never lock
	stats  statsTable
	repo   atomic.Pointer[repoRef]
}

// model is immutable once published.
type model struct {
	name       string
	def        serving.Predictor
	defVersion string
	versions   map[string]serving.Predictor
	order      []string // versions in registration order
}

// NewServer returns a Server with no models.
func NewServer(opts ...Option) *Server {
	s := &Server{cfg: defaultConfig()}
	for _, o := range opts {
		o.apply(&s.cfg)
	}
	empty := map[string]*model{}
	s.models.Store(&empty)
	return s
}

// Server returns s. It lets a transport take a Server, or anything that
// serves one (an httpapi.Handler), through one small interface.
func (s *Server) Server() *Server { return s }

// Info returns the name and version the server metadata reports.
func (s *Server) Info() (name, version string) { return s.cfg.name, s.cfg.version }

// Handle registers p as model name. With Version it is that version; the
// first Predictor of a name, or one given Default, answers requests that
// name no version. Registering a version twice is an error; Remove it
// first.
//
// A default Predictor that holds versions itself (serving.Versioned, such
// as a rollout router) answers for every version it holds: a call for
// version v goes to the default with Request.Version = v, so the whole
// chain sees it, while v's readiness, metadata and configuration come
// from that version alone.
func (s *Server) Handle(name string, p serving.Predictor, opts ...ModelOption) error {
	if name == "" || p == nil {
		return serving.Errorf(serving.InvalidArgument, "oip: Handle needs a model name and a Predictor")
	}
	var mc modelConfig
	for _, o := range opts {
		o.applyModel(&mc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := *s.models.Load()
	m := &model{name: name, versions: map[string]serving.Predictor{}}
	if old, ok := cur[name]; ok {
		*m = *old
		m.versions = maps.Clone(old.versions)
		m.order = slices.Clone(old.order)
	}
	if mc.version != "" {
		if _, dup := m.versions[mc.version]; dup {
			return serving.Errorf(serving.InvalidArgument, "oip: model %q version %q already registered", name, mc.version)
		}
		m.versions[mc.version] = p
		m.order = append(m.order, mc.version)
	} else if m.def != nil && !mc.isDefault {
		return serving.Errorf(serving.InvalidArgument, "oip: model %q already has a default Predictor", name)
	}
	if m.def == nil || mc.isDefault || mc.version == "" {
		m.def, m.defVersion = p, mc.version
	}
	next := maps.Clone(cur)
	next[name] = m
	s.models.Store(&next)
	return nil
}

// Remove unregisters a version of a model, or the whole model when version
// is "", and forgets its statistics. It reports whether anything was
// removed. It does not close the Predictor: the caller owns it
// (serving.Close).
func (s *Server) Remove(name, version string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := *s.models.Load()
	old, ok := cur[name]
	if !ok {
		return false
	}
	next := maps.Clone(cur)
	if version == "" {
		delete(next, name)
		s.models.Store(&next)
		s.stats.forget(name, "")
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
	s.models.Store(&next)
	s.stats.forget(name, version)
	return true
}

// Models returns the registered model names, sorted.
func (s *Server) Models() []string {
	return slices.Sorted(maps.Keys(*s.models.Load()))
}

// Lookup finds the Predictor that answers model name at version ("" = the
// default) and the version it answers as. A version not registered on its
// own is looked for in a default Predictor that holds versions itself
// (serving.Versioned, a rollout router): the answer is then that default,
// to be called with Request.Version set to version, so the whole chain
// sees the request. Unknown names and versions are NotFound errors.
func (s *Server) Lookup(name, version string) (serving.Predictor, string, error) {
	t, err := s.Resolve(name, version)
	return t.call, t.Version, err
}

// Target is a model version resolved for a call: what Infer calls, and the
// Predictor that speaks for the version's own readiness, metadata and
// configuration (for a version held by a router, the router's pinned
// view of it).
type Target struct {
	// Model is the model's name and Version the version resolved: the one
	// asked for, the default's registered version, or "" for a default
	// registered without one (a router, which picks per request).
	Model, Version string
	call, self     serving.Predictor
}

// Resolve finds model name at version ("" = the default) as Lookup does.
func (s *Server) Resolve(name, version string) (Target, error) {
	m, ok := (*s.models.Load())[name]
	if !ok {
		return Target{}, serving.Errorf(serving.NotFound, "oip: unknown model %q", name)
	}
	if version == "" {
		return Target{Model: name, Version: m.defVersion, call: m.def, self: m.def}, nil
	}
	if p, ok := m.versions[version]; ok {
		return Target{Model: name, Version: version, call: p, self: p}, nil
	}
	if vs, ok := serving.VersionsOf(m.def); ok {
		if pinned, ok := vs.Version(version); ok {
			return Target{Model: name, Version: version, call: m.def, self: pinned}, nil
		}
	}
	return Target{}, serving.Errorf(serving.NotFound, "oip: model %q has no version %q", name, version)
}

// Ready reports whether the target can serve.
func (t Target) Ready() bool { return serving.IsReady(t.self) }

// Metadata returns the target version's metadata (serving.MetadataOf).
func (t Target) Metadata() serving.Metadata {
	md, _ := serving.MetadataOf(t.self)
	return md
}

// ModelReady reports whether model name at version ("" = the default) can
// serve; unknown names and versions are NotFound errors.
func (s *Server) ModelReady(name, version string) (bool, error) {
	t, err := s.Resolve(name, version)
	if err != nil {
		return false, err
	}
	return t.Ready(), nil
}

// ModelMetadata returns the metadata of model name at version ("" = the
// default) and the versions the model has: the one asked for, or every
// version registered or held by a versioned default.
func (s *Server) ModelMetadata(name, version string) (serving.Metadata, []string, error) {
	t, err := s.Resolve(name, version)
	if err != nil {
		return serving.Metadata{}, nil, err
	}
	if version != "" {
		return t.Metadata(), []string{version}, nil
	}
	return t.Metadata(), s.Versions(name), nil
}

// Versions lists a model's registered versions, then those its default
// holds that were not registered on their own.
func (s *Server) Versions(name string) []string {
	m, ok := (*s.models.Load())[name]
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
// readiness.
func (s *Server) Ready() bool {
	for _, m := range *s.models.Load() {
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

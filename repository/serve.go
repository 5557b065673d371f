package repository

import (
	"context"
	"slices"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
	"github.com/servekit/servekit/serving/oip"
)

// A Repository is the model repository of an oip.Server: Triton's
// repository extension (index, load, unload) and model-configuration
// extension read it.
var _ oip.Repository = (*Repository)(nil)

// WithServer serves the repository's models on s, over every transport
// that serves s (httpapi, grpcapi): each model's router is registered as
// it enters the repository, wrapped in mw (outermost first, as
// serving.Chain; telemetry belongs here, above the router, so it labels
// metrics with the version that answered), and removed as it leaves. The
// repository becomes s's model repository (oip.Server.AttachRepository):
// its configurations answer the model-configuration extension, and its
// index, loads and unloads the repository extension, when s allows
// repository control. It works beside WithModelHook.
func WithServer(s *oip.Server, mw ...serving.Middleware) Option {
	return optionFunc(func(c *config) { c.server, c.serverMW = s, mw })
}

// serve registers or removes a model on the Server given WithServer.
func (r *Repository) serve(name string, rt *rollout.Router) {
	s := r.cfg.server
	if rt == nil {
		s.Remove(name, "")
		return
	}
	var p serving.Predictor = rt
	if len(r.cfg.serverMW) > 0 {
		p = serving.Chain(r.cfg.serverMW[0], r.cfg.serverMW[1:]...)(rt)
	}
	if err := s.Handle(name, p); err != nil {
		r.log.Error("cannot serve model: another Predictor has its name", "model", name, "err", err)
	}
}

// Index is the repository index as Triton's repository extension lists
// it: every version of every model held, with its state (READY, LOADING,
// UNLOADING, or UNAVAILABLE with the reason it failed), and every model
// directory on disk that holds nothing loaded (not loaded in explicit
// mode, or unloaded) once, UNAVAILABLE. It implements oip.Repository.
func (r *Repository) Index(ctx context.Context) ([]oip.IndexEntry, error) {
	ctx, end, err := r.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	names, err := listModels(r.realRoot, func(string, string) {})
	if err != nil {
		return nil, serving.Errorf(serving.Unavailable, "repository: reading %s: %w", r.root, err)
	}
	st := r.Status()
	var idx []oip.IndexEntry
	held := map[string]bool{}
	for _, m := range st.Models {
		held[m.Name] = true
		if len(m.Versions) == 0 {
			reason := m.Reason
			if reason == "" {
				reason = "no version loaded"
			}
			idx = append(idx, oip.IndexEntry{Name: m.Name, State: oip.StateUnavailable, Reason: reason})
		}
		for _, v := range m.Versions {
			idx = append(idx, oip.IndexEntry{Name: m.Name, Version: v.Version, State: indexState(v.State), Reason: v.Reason})
		}
	}
	for _, n := range names {
		if !held[n] {
			idx = append(idx, oip.IndexEntry{Name: n, State: oip.StateUnavailable, Reason: "unloaded"})
		}
	}
	slices.SortStableFunc(idx, func(a, b oip.IndexEntry) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return idx, serving.ContextError(ctx, "repository: index")
}

func indexState(s State) string {
	switch s {
	case StateReady:
		return oip.StateReady
	case StateLoading:
		return oip.StateLoading
	case StateUnloading:
		return oip.StateUnloading
	}
	return oip.StateUnavailable
}

// LoadModel is Load of the whole model: Triton's load, which takes no
// version. It implements oip.Repository.
func (r *Repository) LoadModel(ctx context.Context, model string) error {
	return r.Load(ctx, model, "")
}

// UnloadModel is Unload of the whole model: Triton's unload. It implements
// oip.Repository.
func (r *Repository) UnloadModel(ctx context.Context, model string) error {
	return r.Unload(ctx, model, "")
}

// ModelConfig returns the configuration model is served with, Config's
// Triton part, or false for a model whose directory has no configuration
// file: the Server then describes the model as its chain serves it (a
// batcher's rows, a cache), as Triton's auto-complete describes a model
// without one. It implements oip.Repository.
func (r *Repository) ModelConfig(model string) (*mc.ModelConfig, bool) {
	c, ok := r.Config(model)
	if !ok || c.Model == nil || c.file == noConfigFile {
		return nil, false
	}
	return c.Model, true
}

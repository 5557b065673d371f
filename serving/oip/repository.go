package oip

import (
	"context"
	"net/http"
	"slices"

	"github.com/servekit/servekit/serving"
	mc "github.com/servekit/servekit/serving/modelconfigpb"
)

// Repository is the optional capability behind Triton's model repository
// extension: a model repository that lists its models and loads and
// unloads them whole, as Triton's clients ask. *repository.Repository
// implements it; attach one with AttachRepository.
type Repository interface {
	// Index lists every model in the repository, loaded or not: a model's
	// versions each with their state, a model with none loaded once with
	// no version, state UNAVAILABLE and why.
	Index(ctx context.Context) ([]IndexEntry, error)
	// LoadModel loads or reloads model from the repository, as its version
	// policy says, and returns when it is ready or failed.
	LoadModel(ctx context.Context, model string) error
	// UnloadModel stops serving model; it stays unloaded until LoadModel.
	UnloadModel(ctx context.Context, model string) error
	// ModelConfig returns the configuration model is served with, if the
	// repository has one (its config.pbtxt). The Server only reads it.
	ModelConfig(model string) (*mc.ModelConfig, bool)
}

// IndexEntry is one row of the repository index, Triton's: State is
// READY, LOADING, UNLOADING or UNAVAILABLE; Reason says why a version is
// not ready.
type IndexEntry struct {
	Name, Version, State, Reason string
}

// The states of an IndexEntry, as Triton spells them.
const (
	StateReady       = "READY"
	StateLoading     = "LOADING"
	StateUnloading   = "UNLOADING"
	StateUnavailable = "UNAVAILABLE"
)

type repoRef struct{ r Repository }

// AttachRepository makes r the Server's model repository: its index, load
// and unload answer the repository extension (when WithRepositoryControl
// turned it on) and its configurations the model-configuration extension.
// Nil detaches it. Repository control stays off unless the Server was
// built WithRepositoryControl: attaching a repository does not open it.
func (s *Server) AttachRepository(r Repository) {
	if r == nil {
		s.repo.Store(nil)
		return
	}
	s.repo.Store(&repoRef{r})
}

// ErrRepositoryControlOff is the answer to repository requests on a Server
// built without WithRepositoryControl.
var ErrRepositoryControlOff = serving.Errorf(serving.Unimplemented,
	"oip: model repository control is not enabled on this server (an admin capability: see oip.WithRepositoryControl, servekit serve --model-control-mode explicit)")

// AuthorizeRepository checks an admin request for the repository
// extension: who is asking, or ErrRepositoryControlOff, or the
// authoriser's refusal (code Unauthenticated, else PermissionDenied).
// Transports call it before RepositoryIndex, LoadModel and UnloadModel,
// with the request as it arrived (a gRPC call's too: its metadata are its
// headers).
func (s *Server) AuthorizeRepository(r *http.Request) (who string, err error) {
	auth := s.cfg.admin
	if auth == nil {
		return "", ErrRepositoryControlOff
	}
	who, err = auth(r)
	if err == nil {
		if who == "" {
			who = "anonymous"
		}
		return who, nil
	}
	s.cfg.logger().Warn("oip: repository control refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	if serving.CodeOf(err) == serving.Unauthenticated {
		return "", err
	}
	return "", serving.NewError(serving.PermissionDenied, err)
}

// RepositoryControl reports whether the repository extension is on.
func (s *Server) RepositoryControl() bool { return s.cfg.admin != nil }

// RepositoryIndex lists the repository's models (ready ones only when
// ready is true). Without an attached repository it lists the registered
// models and their versions, each READY or UNAVAILABLE.
func (s *Server) RepositoryIndex(ctx context.Context, ready bool) ([]IndexEntry, error) {
	if s.cfg.admin == nil {
		return nil, ErrRepositoryControlOff
	}
	var idx []IndexEntry
	if r := s.repo.Load(); r != nil {
		var err error
		if idx, err = r.r.Index(ctx); err != nil {
			return nil, err
		}
	} else {
		idx = s.tableIndex()
	}
	if ready {
		idx = slices.DeleteFunc(idx, func(e IndexEntry) bool { return e.State != StateReady })
	}
	return idx, nil
}

func (s *Server) tableIndex() []IndexEntry {
	var idx []IndexEntry
	for _, name := range s.Models() {
		for _, v := range s.Versions(name) {
			e := IndexEntry{Name: name, Version: v, State: StateUnavailable, Reason: "not ready"}
			if ok, _ := s.ModelReady(name, v); ok {
				e.State, e.Reason = StateReady, ""
			}
			idx = append(idx, e)
		}
	}
	return idx
}

// LoadModel loads or reloads model from the attached repository for who
// (logged), as Triton's load does. params are the request's: Triton's
// "config" (a configuration to load with instead of the repository's) and
// "file:" (model files sent in the request) are Unimplemented here,
// servekit loads what is on disk; others are InvalidArgument.
func (s *Server) LoadModel(ctx context.Context, who, model string, params map[string]any) error {
	r, err := s.controlled()
	if err != nil {
		return err
	}
	for k := range params {
		switch {
		case k == "config" || len(k) > 5 && k[:5] == "file:":
			return serving.Errorf(serving.Unimplemented, "oip: load parameter %q: servekit loads models from its repository on disk; change the files there (a new config.pbtxt, a new version directory) and load again", k)
		default:
			return serving.Errorf(serving.InvalidArgument, "oip: unknown load parameter %q", k)
		}
	}
	err = r.LoadModel(ctx, model)
	s.cfg.logger().Info("oip: model load requested", "model", model, "who", who, "err", err)
	return err
}

// UnloadModel unloads model for who (logged). The one parameter is
// Triton's "unload_dependents", accepted and without effect: no model
// here depends on another (ensembles are not served).
func (s *Server) UnloadModel(ctx context.Context, who, model string, params map[string]any) error {
	r, err := s.controlled()
	if err != nil {
		return err
	}
	for k, v := range params {
		if _, isBool := v.(bool); k != "unload_dependents" || !isBool {
			return serving.Errorf(serving.InvalidArgument, "oip: unknown unload parameter %q (want unload_dependents, a bool)", k)
		}
	}
	err = r.UnloadModel(ctx, model)
	s.cfg.logger().Info("oip: model unload requested", "model", model, "who", who, "err", err)
	return err
}

func (s *Server) controlled() (Repository, error) {
	if s.cfg.admin == nil {
		return nil, ErrRepositoryControlOff
	}
	r := s.repo.Load()
	if r == nil {
		return nil, errNoRepository
	}
	return r.r, nil
}

var errNoRepository = serving.Errorf(serving.Unimplemented, "oip: this server's models are not from a model repository: nothing to load or unload")

// Extensions lists the protocol extensions the Server serves, as the
// server metadata reports them (a transport adds its own, such as REST's
// binary_tensor_data): classification, parameters, schedule_policy (the
// priority and timeout parameters), model_configuration, statistics, and
// the model repository's when repository control is on.
func (s *Server) Extensions() []string {
	ext := []string{"classification", "parameters", "schedule_policy", "model_configuration", "statistics"}
	if s.cfg.admin != nil {
		ext = append(ext, "model_repository", "model_repository(unload_dependents)")
	}
	return ext
}

package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/servekit/servekit/admin"
	"github.com/servekit/servekit/serving"
)

// The admin API (admin.New) finds routers through Models and Router,
// and loads and unloads through Load and Unload.
var (
	_ admin.Loader   = (*Repository)(nil)
	_ admin.Registry = (*Repository)(nil)
)

// Load is Triton's explicit model control: it reads model from the disk now
// and loads what its version policy wants, waiting for the loads. version
// "" means the whole model; a version names one, which must be on disk and
// selected by the policy. Versions that failed before are tried again even
// if their files did not change; versions already loaded and unchanged are
// left alone. A model or version unloaded with Unload is managed again.
//
// It returns nil when what was asked for is ready, else an error with the
// reason and its code: NotFound for no such model or version directory,
// InvalidArgument for invalid names, a rejected config.json or a version
// the policy does not select, the load's own code when it failed.
// Load implements admin.Loader, which the admin API calls.
func (r *Repository) Load(ctx context.Context, model, version string) error {
	ctx, end, err := r.beginNamed(ctx, model, version)
	if err != nil {
		return err
	}
	defer end()
	r.mu.Lock()
	delete(r.unloaded, model)
	if version == "" {
		delete(r.excluded, model)
	} else {
		delete(r.excluded[model], version)
	}
	r.mu.Unlock()
	retry := func(v string) bool { return version == "" || v == version }
	if err := r.syncModel(ctx, model, retry); err != nil {
		return err
	}
	return r.loadResult(model, version)
}

// beginNamed checks names from a caller, which may come from a URL, before
// anything touches the disk, then begins the operation.
func (r *Repository) beginNamed(ctx context.Context, model, version string) (context.Context, func(), error) {
	if err := ValidModelName(model); err != nil {
		return nil, nil, err
	}
	if version != "" {
		if _, err := checkVersion(model, version); err != nil {
			return nil, nil, err
		}
	}
	return r.begin(ctx)
}

// loadResult reports the state Load leaves model (or one version) in.
func (r *Repository) loadResult(model, version string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[model]
	if m == nil {
		return serving.Errorf(serving.NotFound, "repository: model %q was removed while it loaded", model)
	}
	if version != "" {
		v := m.versions[version]
		switch {
		case v == nil && !r.onDisk(model, version):
			return serving.Errorf(serving.NotFound, "repository: model %q has no version %s in %s: %w", model, version, r.root, serving.ErrNotFound)
		case v == nil:
			return serving.Errorf(serving.InvalidArgument, "repository: model %q version %s is not selected by the version policy (%s); change version_policy in its %s or %s", model, version, m.cfg.VersionPolicy, TritonConfigFile, ConfigFile)
		}
		return loadError(model, version, v)
	}
	var errs []error
	for name, v := range m.versions {
		if err := loadError(model, name, v); err != nil {
			errs = append(errs, err)
		}
	}
	if len(m.versions) == 0 {
		return serving.Errorf(serving.NotFound, "repository: model %q has no version directory in %s: %w", model, r.root, serving.ErrNotFound)
	}
	return errors.Join(errs...)
}

func (r *Repository) onDisk(model, version string) bool {
	_, err := resolveWithin(r.realRoot, model, version)
	return err == nil
}

// loadError is a version's last load error, nil when it is ready and its
// files loaded.
func loadError(model, version string, v *version) error {
	switch {
	case v.ready && v.err == nil:
		return nil
	case v.ready:
		return serving.Errorf(serving.CodeOf(v.err), "repository: model %q version %s: reload failed, the previous files keep serving: %w", model, version, v.err)
	case v.err == nil:
		return serving.Errorf(serving.Unavailable, "repository: model %q version %s is %s", model, version, v.state)
	}
	return serving.Errorf(serving.CodeOf(v.err), "repository: model %q version %s: %w", model, version, v.err)
}

// Unload stops serving a version (or the whole model for version ""): it
// leaves the router at once and is closed once its in-flight requests have
// finished (bounded by ctx and the drain timeout). It stays unloaded, even
// while the watcher sees it on disk, until Load asks for it again. Under
// TrafficLatest, unloading the serving version sends traffic to the next
// highest ready version first, loading it if the policy now selects it:
// unloading a bad release falls back to the previous one. Unload
// implements admin.Loader.
func (r *Repository) Unload(ctx context.Context, model, version string) error {
	ctx, end, err := r.beginNamed(ctx, model, version)
	if err != nil {
		return err
	}
	defer end()
	r.mu.Lock()
	m := r.models[model]
	held := m != nil && (version == "" || m.versions[version] != nil)
	switch {
	case !held:
	case version == "":
		r.unloaded[model] = true
	default:
		if r.excluded[model] == nil {
			r.excluded[model] = map[string]bool{}
		}
		r.excluded[model][version] = true
	}
	r.mu.Unlock()
	if !held {
		what := fmt.Sprintf("model %q", model)
		if version != "" {
			what += " version " + version
		}
		return serving.Errorf(serving.NotFound, "repository: %s is not loaded: %w", what, serving.ErrNotFound)
	}
	if version != "" {
		if err := r.syncModel(ctx, model, nil); err != nil && serving.CodeOf(err) != serving.InvalidArgument {
			return err
		}
		return nil
	}
	if err := m.acquire(ctx); err != nil {
		return serving.ContextError(ctx, "repository: waiting for model "+model)
	}
	defer m.release()
	if !r.isGone(m) {
		r.unloadModel(m)
	}
	return nil
}

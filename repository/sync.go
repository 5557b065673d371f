package repository

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

// syncModel brings one model in step with its directory: it creates the
// model (and tells the hook) when the directory is new, unloads it when the
// directory is gone, and otherwise reconciles its versions. retry, when
// set, says which failed versions to load again although their files did
// not change (an explicit Load).
func (r *Repository) syncModel(ctx context.Context, name string, retry func(v string) bool) error {
	for {
		_, statErr := r.modelDir(name)
		m, created, err := r.modelFor(name, statErr == nil, retry != nil)
		if err != nil {
			return err
		}
		switch {
		case m == nil && statErr == nil:
			return serving.Errorf(serving.NotFound, "repository: model %q is not loaded (explicit mode or Unload): %w", name, serving.ErrNotFound)
		case m == nil:
			if !errors.Is(statErr, fs.ErrNotExist) {
				r.skip(name, statErr.Error())
			}
			return serving.Errorf(serving.NotFound, "repository: no model %q in %s: %w", name, r.root, serving.ErrNotFound)
		}
		if created {
			// modelFor handed the new model over locked, so no one else can
			// unload it before the hook hears of it.
			r.log.Info("model added", "model", name)
			r.notify(name, m.router)
		} else if err := m.acquire(ctx); err != nil {
			return serving.ContextError(ctx, "repository: waiting for model "+strconv.Quote(name))
		}
		if r.isGone(m) { // unloaded while we waited: look again
			m.release()
			continue
		}
		err = r.reconcile(ctx, m, retry)
		m.release()
		return err
	}
}

func (r *Repository) modelDir(name string) (string, error) {
	dir, err := resolveWithin(r.realRoot, name)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(dir)
	if err == nil && !st.IsDir() {
		err = fs.ErrNotExist
	}
	return dir, err
}

// modelFor returns the model called name, creating it (locked, with a new
// router) when it does not exist, its directory does (onDisk), and it may
// be: always for an explicit Load, else unless explicit mode is on or
// Unload took the model out. Deciding under mu keeps a poll that listed
// the model before an Unload from bringing it back.
func (r *Repository) modelFor(name string, onDisk, explicitLoad bool) (m *model, created bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, ErrClosed
	}
	mayCreate := onDisk && (explicitLoad || !r.cfg.explicit && !r.unloaded[name])
	if m := r.models[name]; m != nil || !mayCreate {
		return m, false, nil
	}
	router, err := rollout.New(name, r.cfg.routerOpts...) // checked by Open: cannot fail here
	if err != nil {
		return nil, false, err
	}
	m = &model{name: name, lock: make(chan struct{}, 1), versions: map[string]*version{}, router: router}
	m.lock <- struct{}{}
	r.models[name] = m
	return m, true, nil
}

func (m *model) acquire(ctx context.Context) error {
	select {
	case m.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *model) release() { <-m.lock }

func (r *Repository) isGone(m *model) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m.gone
}

// reconcile runs with m locked. It loads what the version policy wants and
// is not loaded (or changed on disk), points traffic at the result, then
// unloads what the policy no longer wants. Loading comes first, so a model
// is never without its old versions while new ones load, and a version
// that fails to load leaves the old ones serving.
func (r *Repository) reconcile(ctx context.Context, m *model, retry func(string) bool) error {
	d, err := scanModel(r.realRoot, m.name, r.cfg.modelFile, r.skip)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("model directory unusable: unloading", "model", m.name, "err", err)
		}
		r.unloadModel(m)
		return serving.Errorf(serving.NotFound, "repository: model %q: %w", m.name, err)
	}
	var ignored []string
	if d.cfgErr == nil {
		ignored = append(slices.Clone(d.cfg.Ignored), unapplied(d.cfg.uses, r.cfg.loaderFields)...)
		if r.cfg.strict && len(ignored) > 0 {
			d.cfgErr = fileErr(d.cfg.file, "strict mode: servekit does not implement %s", strings.Join(ignored, "; "))
		}
	}
	if d.cfgErr != nil {
		r.mu.Lock()
		changed := m.reason != d.cfgErr.Error()
		m.reason = d.cfgErr.Error()
		r.mu.Unlock()
		if changed {
			r.log.Error("model config rejected: nothing new is loaded until it is fixed", "model", m.name, "err", d.cfgErr)
		}
		r.dropExcluded(ctx, m)
		return serving.Errorf(serving.InvalidArgument, "repository: model %q: %w", m.name, d.cfgErr)
	}
	r.mu.Lock()
	m.reason, m.cfg = "", d.cfg
	logIgnored := !slices.Equal(m.ignored, ignored)
	m.ignored = ignored
	excluded := r.excluded[m.name]
	cands := slices.DeleteFunc(slices.Clone(d.versions), func(dv diskVersion) bool { return excluded[dv.name()] })
	if retry != nil {
		for _, dv := range cands {
			if v := m.versions[dv.name()]; v != nil && retry(dv.name()) {
				v.failedFP = ""
			}
		}
	}
	r.mu.Unlock()
	if logIgnored && len(ignored) > 0 {
		r.log.Warn("model config: fields ignored (servekit does not implement them; WithStrictConfig refuses them)", "model", m.name, "file", d.cfg.file, "ignored", ignored)
	}

	policy := d.cfg.VersionPolicy
	var want []diskVersion
	// Each round either loads a version or learns that it fails; a failed
	// version stops counting towards the policy, so "latest 1" falls back
	// to the next version down. len(cands)+1 rounds always suffice.
	for range len(cands) + 1 {
		want = pick(policy, r.filter(m, cands, func(dv diskVersion, v *version) bool {
			return v == nil || v.ready || v.failedFP != dv.v.Fingerprint
		}))
		todo := r.filter(m, want, func(dv diskVersion, v *version) bool {
			fp := dv.v.Fingerprint
			return v == nil || (v.failedFP != fp && (!v.ready || v.fp != fp))
		})
		if len(todo) == 0 {
			break
		}
		r.loadAll(ctx, m, d.cfg, todo)
		if ctx.Err() != nil {
			return serving.ContextError(ctx, "repository: loading model "+strconv.Quote(m.name))
		}
	}
	keep := r.filter(m, want, func(_ diskVersion, v *version) bool { return v != nil && v.ready })
	// Versions the policy would serve if they loaded keep their failed
	// placeholders, so their readiness reads 503 with the reason.
	report := r.filter(m, pick(policy, cands), func(_ diskVersion, v *version) bool { return v != nil && !v.ready })
	r.route(m, d.cfg.traffic(), names(keep))

	stay := map[string]bool{}
	for _, dv := range slices.Concat(keep, report) {
		stay[dv.name()] = true
	}
	r.mu.Lock()
	var drop []string
	for v := range m.versions {
		if !stay[v] {
			drop = append(drop, v)
		}
	}
	r.mu.Unlock()
	r.removeVersions(ctx, m, drop)
	return nil
}

// pick applies the policy to versions (ascending).
func pick(p VersionPolicy, dvs []diskVersion) []diskVersion {
	nums := make([]int64, len(dvs))
	for i, dv := range dvs {
		nums[i] = dv.num
	}
	chosen := p.selects(nums)
	return slices.DeleteFunc(slices.Clone(dvs), func(dv diskVersion) bool { return !slices.Contains(chosen, dv.num) })
}

// filter keeps the disk versions for which keep, given the version's state
// (nil when never seen), is true.
func (r *Repository) filter(m *model, dvs []diskVersion, keep func(diskVersion, *version) bool) []diskVersion {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []diskVersion
	for _, dv := range dvs {
		if keep(dv, m.versions[dv.name()]) {
			out = append(out, dv)
		}
	}
	return out
}

// loadAll loads versions in parallel, at most WithLoadConcurrency at a time
// across the repository.
func (r *Repository) loadAll(ctx context.Context, m *model, cfg *Config, dvs []diskVersion) {
	var wg sync.WaitGroup
	for _, dv := range dvs {
		wg.Go(func() {
			select {
			case r.loads <- struct{}{}:
				defer func() { <-r.loads }()
			case <-ctx.Done():
			}
			r.loadVersion(ctx, m, cfg, dv)
		})
	}
	wg.Wait()
}

// loadVersion loads and warms one version and puts it in the router. A new
// version is represented by a loading placeholder meanwhile; a version that
// serves keeps serving its old Predictor until the new one is ready, and
// keeps it if the new one fails.
func (r *Repository) loadVersion(ctx context.Context, m *model, cfg *Config, dv diskVersion) {
	name, fp := dv.name(), dv.v.Fingerprint
	r.mu.Lock()
	v := m.versions[name]
	if v == nil {
		v = &version{num: dv.num}
		m.versions[name] = v
	}
	reload := v.ready
	if !reload {
		v.state, v.reason, v.fp = StateLoading, "", fp
	}
	r.mu.Unlock()
	log := r.log.With("model", m.name, "version", name, "fingerprint", fp)
	if reload {
		log.Info("reloading version: its files changed; the loaded one serves meanwhile")
	} else {
		log.Info("loading version")
		_ = m.router.Put(name, loadingPlaceholder(m.name, name))
	}

	start := time.Now()
	err := dv.err
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		var p serving.Predictor
		if p, err = prepare(ctx, r.load, dv.v, r.cfg.loadTimeout); err == nil {
			if err = m.router.Put(name, p); err != nil {
				_ = serving.Close(p)
			}
		}
	}
	took := time.Since(start).Round(time.Millisecond)

	r.mu.Lock()
	v.err = err
	switch {
	case err == nil:
		v.state, v.reason, v.ready, v.fp, v.failedFP, v.loadedAt = StateReady, "", true, fp, "", time.Now()
	case reload:
		v.reason = "reload failed, the previous files keep serving: " + err.Error()
	default:
		v.state, v.reason = StateFailed, err.Error()
	}
	// A load cut short by the caller or Close is not the files' fault: it
	// is tried again at the next sync.
	if err != nil && ctx.Err() == nil {
		v.failedFP = fp
	}
	r.mu.Unlock()

	switch {
	case err == nil:
		log.Info("version ready", "took", took, "path", dv.v.Path)
	case reload:
		log.Error("version reload failed: the loaded one keeps serving", "took", took, "err", err)
	default:
		log.Error("version failed to load: it gets no traffic", "took", took, "err", err)
		_ = m.router.Put(name, failedPlaceholder(m.name, name, err))
	}
}

func names(dvs []diskVersion) []string {
	out := make([]string, len(dvs))
	for i, dv := range dvs {
		out[i] = dv.name()
	}
	return out
}

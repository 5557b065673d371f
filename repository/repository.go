package repository

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = serving.Errorf(serving.Unavailable, "repository: closed")

// Repository serves the models of a directory tree, one rollout.Router per
// model, and keeps them in step with the disk. Build it with Open; it is
// safe for concurrent use. Close it to stop watching and close every
// router.
type Repository struct {
	root     string // as given, for messages
	realRoot string // absolute, symlinks resolved: every path is checked against it
	load     LoadFunc
	cfg      config
	log      *slog.Logger
	loads    chan struct{} // semaphore: versions loading at once

	stopWatch context.CancelFunc // ends the watcher; set once by Open
	watchDone chan struct{}      // closed when the watcher has returned
	ops       sync.WaitGroup     // Sync, Load and Unload calls in progress

	mu       sync.Mutex
	closed   bool                        // guarded by mu
	cancels  map[*int]context.CancelFunc // guarded by mu: ends the ops in progress on Close
	models   map[string]*model           // guarded by mu
	unloaded map[string]bool             // guarded by mu: models unloaded with Unload, skipped by polls
	skipped  map[string]string           // guarded by mu: invalid entries already logged, and why
	excluded map[string]map[string]bool  // guarded by mu: versions unloaded with Unload, by model
	hookMu   sync.Mutex                  // serialises hook calls, so a transport sees them in order
}

// model is one model directory and its router. Its lock is held by
// whoever changes it (a sync, a load, an unload), so changes to one model
// are serial while different models change in parallel; the fields that
// Status reads are guarded by Repository.mu.
type model struct {
	name   string
	lock   chan struct{} // a token: send to acquire (honouring ctx), receive to release
	router *rollout.Router

	gone     bool                // guarded by mu: unloaded and dropped; a waiter must look again
	cfg      *Config             // guarded by mu: the config in force (nil before the first good one)
	reason   string              // guarded by mu: a model-level problem (its config)
	ignored  []string            // guarded by mu: config fields servekit ignores, as last logged
	versions map[string]*version // guarded by mu
	served   string              // guarded by mu: the version TrafficLatest last switched to
}

type version struct {
	num      int64
	state    State
	reason   string
	err      error // the last load error, with its code, for Load's answer
	loadedAt time.Time
	fp       string // fingerprint of what serves (ready), or of what is loading or failed
	failedFP string // a fingerprint whose load failed: not retried until it changes
	ready    bool   // a loaded Predictor (not a placeholder) is in the router
}

// Open reads root and loads every model in it (only those named by
// WithExplicit in explicit mode), waiting for their loads and warm-ups,
// then watches root (WithPollInterval). A version that fails to load is
// reported in Status and logged; it does not fail Open, which fails only
// when root cannot be read or ctx ends first.
func Open(ctx context.Context, root string, load LoadFunc, opts ...Option) (*Repository, error) {
	if load == nil {
		return nil, serving.Errorf(serving.InvalidArgument, "repository: Open needs a LoadFunc")
	}
	real, err := realDir(root)
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "repository: root: %w", err)
	}
	c := newConfig(opts)
	if err := errors.Join(c.errs...); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "repository: %w", err)
	}
	// Router options are checked now, not at the first model's load: build
	// one router and drop it.
	probe, err := rollout.New("", c.routerOpts...)
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "repository: WithRouterOptions: %w", err)
	}
	probe.Close()
	for _, f := range c.loaderFields {
		if !slices.Contains(loaderFields, f) {
			return nil, serving.Errorf(serving.InvalidArgument, "repository: WithLoaderFields: %q is not a field a loader applies (want one of %v)", f, loaderFields)
		}
	}
	r := &Repository{
		root:      root,
		realRoot:  real,
		load:      load,
		cfg:       c,
		log:       c.log.With("repository", root),
		loads:     make(chan struct{}, c.loads),
		watchDone: make(chan struct{}),
		cancels:   map[*int]context.CancelFunc{},
		models:    map[string]*model{},
		unloaded:  map[string]bool{},
		skipped:   map[string]string{},
		excluded:  map[string]map[string]bool{},
	}
	if c.server != nil {
		c.server.AttachRepository(r)
	}
	if c.explicit {
		for _, name := range c.startup {
			if err := ValidModelName(name); err != nil {
				return nil, errors.Join(err, r.Close())
			}
		}
		for _, name := range c.startup {
			// A model that fails to load is in Status and the log; only
			// the caller giving up stops Open.
			if err := r.Load(ctx, name, ""); ctx.Err() != nil {
				return nil, errors.Join(err, r.Close())
			}
		}
	} else if err := r.Sync(ctx); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	watchCtx, stop := context.WithCancel(context.Background())
	r.stopWatch = stop
	if c.poll > 0 {
		go r.watch(watchCtx)
	} else {
		close(r.watchDone)
	}
	return r, nil
}

// watch re-reads the root every poll interval until Close.
func (r *Repository) watch(ctx context.Context) {
	defer close(r.watchDone)
	t := time.NewTicker(r.cfg.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("repository poll failed", "err", err)
			}
		}
	}
}

// begin registers an operation so Close can end it and wait for it. The
// returned context ends with ctx or at Close.
func (r *Repository) begin(ctx context.Context) (context.Context, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	key := new(int)
	r.cancels[key] = cancel
	r.ops.Add(1)
	return ctx, func() {
		r.mu.Lock()
		delete(r.cancels, key)
		r.mu.Unlock()
		cancel()
		r.ops.Done()
	}, nil
}

// Sync reads the root now and brings every model in step with it: what
// the watcher does each poll. It returns when the loads and unloads it
// started are done. Load failures are not errors (see Status); an error
// means the root could not be read or ctx ended.
func (r *Repository) Sync(ctx context.Context) error {
	ctx, end, err := r.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	names, err := listModels(r.realRoot, r.skip)
	if err != nil {
		return serving.Errorf(serving.Unavailable, "repository: reading %s: %w", r.root, err)
	}
	r.mu.Lock()
	want := map[string]bool{}
	for _, n := range names {
		_, loaded := r.models[n]
		if !r.unloaded[n] && (!r.cfg.explicit || loaded) {
			want[n] = true
		}
	}
	for n := range r.models {
		want[n] = true // even when gone from disk: its sync unloads it
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range slices.Sorted(maps.Keys(want)) {
		wg.Go(func() { _ = r.syncModel(ctx, name, nil) })
	}
	wg.Wait()
	return serving.ContextError(ctx, "repository: sync")
}

// skip logs an ignored entry of the root once (until its reason changes).
func (r *Repository) skip(name, why string) {
	r.mu.Lock()
	seen := r.skipped[name] == why
	r.skipped[name] = why
	r.mu.Unlock()
	if !seen {
		r.log.Warn("ignoring repository entry", "entry", name, "why", why)
	}
}

// Models returns the names of the models the repository holds, sorted.
func (r *Repository) Models() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.models))
}

// Router returns the router serving model, or false when the repository
// does not hold it.
func (r *Repository) Router(model string) (*rollout.Router, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.models[model]
	if !ok {
		return nil, false
	}
	return m.router, true
}

// Config returns the configuration a model is served with (the last one
// that parsed; Status says when a newer file was refused), or false when
// the repository does not hold the model or has read no valid
// configuration for it yet. Config.Model is what Triton's
// model-configuration extension returns; it is shared: read-only.
func (r *Repository) Config(model string) (*Config, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.models[model]
	if !ok || m.cfg == nil {
		return nil, false
	}
	return m.cfg, true
}

// Status returns the repository's index: every model, its policy and
// traffic mode, and each version's state, reason, load time and
// fingerprint, as Triton's repository index reports them. Weights and
// per-version traffic are in the router's own Status.
func (r *Repository) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Root: r.root, Models: []ModelStatus{}}
	for _, name := range slices.Sorted(maps.Keys(r.models)) {
		m := r.models[name]
		ms := ModelStatus{Name: name, Reason: m.reason, Ignored: slices.Clone(m.ignored), Policy: VersionPolicy{}.String(), Traffic: TrafficLatest, Versions: []VersionStatus{}}
		if m.cfg != nil {
			ms.Policy, ms.Traffic = m.cfg.VersionPolicy.String(), m.cfg.traffic()
		}
		vs := slices.Collect(maps.Values(m.versions))
		slices.SortFunc(vs, func(a, b *version) int { return cmp.Compare(a.num, b.num) })
		for _, v := range vs {
			ms.Versions = append(ms.Versions, VersionStatus{
				Version: strconv.FormatInt(v.num, 10), State: v.state, Reason: v.reason,
				LoadedAt: v.loadedAt, Fingerprint: v.fp,
			})
		}
		st.Models = append(st.Models, ms)
	}
	return st
}

// Close stops the watcher, ends the loads in progress, and closes every
// router (which closes every version once its in-flight requests are
// done). The model hook hears of each model leaving first. Close is
// idempotent.
func (r *Repository) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, cancel := range r.cancels {
		cancel()
	}
	r.mu.Unlock()
	if r.stopWatch != nil {
		r.stopWatch()
		<-r.watchDone
	}
	r.ops.Wait()
	r.mu.Lock()
	models := slices.Collect(maps.Values(r.models))
	r.models = map[string]*model{}
	r.mu.Unlock()
	var errs []error
	for _, m := range models {
		r.notify(m.name, nil)
		if err := m.router.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Repository) notify(name string, rt *rollout.Router) {
	if r.cfg.hook == nil && r.cfg.server == nil {
		return
	}
	r.hookMu.Lock()
	defer r.hookMu.Unlock()
	if r.cfg.server != nil {
		r.serve(name, rt)
	}
	if r.cfg.hook != nil {
		r.cfg.hook(name, rt)
	}
}

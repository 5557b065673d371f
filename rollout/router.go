package rollout

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// Router is one named model's versions and the traffic between them. It is
// a serving.Predictor, serving.Versioned, serving.Describer,
// serving.Readier and io.Closer, and safe for concurrent use: requests read
// an immutable routing table without a lock, and changes (Put, Remove,
// SetWeights, Switch, Rollback, plans) are serialised by one mutex.
type Router struct {
	model  string
	cfg    config
	tab    atomic.Pointer[table]
	reg    metric.Registration // nil when the meter refused the callback
	checks sync.WaitGroup      // plan checks set and not yet run or stopped
	done   chan struct{}       // closed when Close has finished

	mu       sync.Mutex         // serialises changes; guards the fields below
	closed   bool               //
	draining map[*slot]struct{} // retired slots not closed yet
	history  []change           // assignments before each change, oldest first
	nextID   uint64             // of history entries
	plan     *planRun           // the plan running or paused, or nil
	last     *PlanStatus        // the last plan that ended

	// shadow is the active mirror (Mirror), read by every routed request;
	// set and cleared with mu held. lastShadow is the final snapshot of the
	// last one stopped, for Status.
	shadow     atomic.Pointer[routerShadow]
	lastShadow *ShadowSnapshot
}

var (
	_ serving.Predictor = (*Router)(nil)
	_ serving.Versioned = (*Router)(nil)
	_ serving.Describer = (*Router)(nil)
	_ serving.Readier   = (*Router)(nil)
	_ io.Closer         = (*Router)(nil)
)

// New returns a Router for model with no versions; Put adds them. Until one
// is put, requests fail with Unavailable. It fails with an InvalidArgument
// error for an invalid option.
func New(model string, opts ...Option) (*Router, error) {
	cfg := newConfig(opts)
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "rollout: %w", err)
	}
	r := &Router{
		model:    model,
		cfg:      cfg,
		draining: make(map[*slot]struct{}),
		done:     make(chan struct{}),
	}
	r.tab.Store(newTable(nil, nil, assignment{}))
	r.reg = r.registerMetrics()
	return r, nil
}

// Model returns the model name the Router was built for.
func (r *Router) Model() string { return r.model }

// Predict answers req with one version. A request whose Version is set is
// pinned to it: an unknown version is NotFound, one that is not ready
// Unavailable. Otherwise the router picks by weight: a request with a Key
// lands on the version owning the key's point (sticky, see the package
// doc), one without on a point drawn at random. If the chosen version is
// not ready, the ready version with the most weight answers instead; if
// none with weight is ready, Unavailable. The Response's Version names the
// version that answered.
func (r *Router) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if err := serving.ContextError(ctx, "rollout: predict"); err != nil {
		return nil, err
	}
	e, s, err := r.route(req.Version, req.Key)
	if err != nil {
		return nil, err
	}
	if req.Version == "" {
		return r.predictMirrored(ctx, req, e, s)
	}
	return r.call(ctx, req, e, s)
}

// maxRetries bounds how often route starts over when a version it chose was
// removed under it; each retry reads a newer table, so more than one is
// already rare.
const maxRetries = 8

// errStale says a version was removed (or the router closed) between
// reading the table and taking a reference: read the table again.
var errStale = errors.New("rollout: stale routing table")

// route picks a version and takes a reference on its current Predictor.
func (r *Router) route(version, key string) (*entry, *slot, error) {
	for range maxRetries {
		t := r.tab.Load()
		if t.closed {
			return nil, nil, serving.ErrClosed
		}
		var e *entry
		var s *slot
		var err error
		if version != "" {
			e, s, err = r.pinned(t, version)
		} else {
			e, s, err = r.weighted(t, key)
		}
		if err != errStale {
			return e, s, err
		}
	}
	return nil, nil, serving.Errorf(serving.Unavailable, "rollout: model %q: versions changed under the request %d times", r.model, maxRetries)
}

// pinned takes version v, which must exist and be ready.
func (r *Router) pinned(t *table, v string) (*entry, *slot, error) {
	e, ok := t.byName[v]
	if !ok {
		return nil, nil, r.unknown(v)
	}
	s := e.acquire()
	if s == nil {
		return nil, nil, errStale
	}
	if !s.ready() {
		s.release(r, false)
		return nil, nil, serving.Errorf(serving.Unavailable, "rollout: model %q version %q is not ready", r.model, v)
	}
	return e, s, nil
}

// weighted takes the version owning key's point (a random point without a
// key) if it is ready, else the ready version with the most weight.
func (r *Router) weighted(t *table, key string) (*entry, *slot, error) {
	var pt int32
	if key != "" {
		pt = point(r.model, key)
	} else {
		pt = randomPoint(rand.Uint64())
	}
	owner := t.owner(pt)
	if owner == nil {
		return nil, nil, serving.Errorf(serving.Unavailable, "rollout: model %q has no version with traffic", r.model)
	}
	s := owner.acquire()
	if s == nil {
		return nil, nil, errStale
	}
	if s.ready() {
		return owner, s, nil
	}
	s.release(r, false)
	for _, e := range t.heavy {
		if e == owner {
			continue
		}
		s := e.acquire()
		if s == nil {
			return nil, nil, errStale
		}
		if s.ready() {
			owner.stats.fallbacks.Add(1)
			return e, s, nil
		}
		s.release(r, false)
	}
	return nil, nil, serving.Errorf(serving.Unavailable, "rollout: model %q: no version with traffic is ready", r.model)
}

func (r *Router) unknown(v string) error {
	return serving.Errorf(serving.NotFound, "rollout: model %q has no version %q: %w", r.model, v, serving.ErrNotFound)
}

// call asks the version's Predictor, keeping its stats, and answers with
// the version's name in Response.Version.
func (r *Router) call(ctx context.Context, req *serving.Request, e *entry, s *slot) (resp *serving.Response, err error) {
	st := &e.stats
	st.inflight.Add(1)
	start := r.cfg.clock.Now()
	defer func() {
		// A version that panics must not take the process with it: for a
		// canary that is exactly the failure a guard should see.
		if p := recover(); p != nil {
			resp, err = nil, serving.Errorf(serving.Internal, "rollout: model %q version %q panicked: %v", r.model, e.name, p)
		}
		now := r.cfg.clock.Now()
		st.inflight.Add(-1)
		st.record(now, now.Sub(start), serving.CodeOf(err))
		s.release(r, false)
	}()
	in := req
	if req.Version != e.name {
		c := *req // the caller's Request is never modified
		c.Version = e.name
		in = &c
	}
	resp, err = s.p.Predict(ctx, in)
	switch {
	case err != nil:
		return nil, err
	case resp == nil:
		return nil, serving.Errorf(serving.Internal, "rollout: model %q version %q returned no response and no error", r.model, e.name)
	case resp.Version != e.name:
		// A copy, not a write: the response may be shared (a cache's).
		c := *resp
		c.Version = e.name
		resp = &c
	}
	return resp, nil
}

// Put makes p serve version v; the Router owns p from then on and closes it
// (serving.Close) when it is replaced, removed or the Router is closed. If
// Put returns an error, p was not taken: the caller still owns it.
//
// A new version joins with weight 0, except when no version has weight (the
// first one): it then takes 100 %. For a version already held it is a hot
// replace: requests from now on go to p, requests in flight on the old
// Predictor finish there, then the old one is closed; its stats carry on.
// A Predictor that is not ready (serving.IsReady false, e.g. a placeholder
// saying "loading") may be put: it gets no routed traffic until it is.
// Putting the Predictor that already serves v changes nothing.
func (r *Router) Put(v string, p serving.Predictor) error {
	if err := checkVersion(r.model, v); err != nil {
		return err
	}
	if p == nil {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q version %q: nil Predictor", r.model, v)
	}
	old, err := r.swap(v, p)
	if err != nil {
		return err
	}
	if old != nil {
		old.release(r, true) // closes it now, or when its last request leaves
	}
	return nil
}

// swap adds v, or makes p its Predictor and returns the one retired.
func (r *Router) swap(v string, p serving.Predictor) (*slot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, e, err := r.lookupLocked(v)
	switch {
	case err != nil:
		return nil, err
	case e == nil:
		r.tab.Store(t.with(newEntry(v, p, r.cfg.clock.Now(), r.cfg.window)))
		return nil, nil
	case e.cur.Load().p == p:
		return nil, nil
	}
	old := e.cur.Swap(newSlot(p))
	r.draining[old] = struct{}{}
	return old, nil
}

// Remove stops routing to v, waits (bounded by ctx) for the requests in
// flight on it, then closes it and returns its Close error. If ctx ends
// first, Remove returns ctx's error and v is closed when its last request
// finishes. A version with traffic weight cannot be removed while other
// versions remain (move its weight first: the router will not guess where
// its traffic should go); the last version can, and takes its weight along.
// Nor can a version the active plan uses. Assignments kept for Rollback
// that give v weight are forgotten.
func (r *Router) Remove(ctx context.Context, v string) error {
	s, mirror, err := r.detach(v)
	if err != nil {
		return err
	}
	r.retireQuietly(mirror)
	s.release(r, true)
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return serving.ContextError(ctx, "rollout: remove version "+v+": waiting for its requests")
	}
}

// lookupLocked returns the table and v's entry (nil when v is not held),
// or ErrClosed.
func (r *Router) lookupLocked(v string) (*table, *entry, error) {
	if r.closed {
		return nil, nil, serving.ErrClosed
	}
	t := r.tab.Load()
	return t, t.byName[v], nil
}

// detach takes v out of the table and returns its retired Predictor, and
// the mirror to v if there is one, to be retired once mu is released.
func (r *Router) detach(v string) (*slot, *routerShadow, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, e, err := r.lookupLocked(v)
	switch {
	case err != nil:
		return nil, nil, err
	case e == nil:
		return nil, nil, r.unknown(v)
	case r.plan != nil && (v == r.plan.plan.Canary || v == r.plan.plan.Stable):
		return nil, nil, serving.Errorf(serving.InvalidArgument, "rollout: model %q version %q is in the active plan: abort it first", r.model, v)
	case t.weights[v] > 0 && len(t.entries) > 1:
		return nil, nil, serving.Errorf(serving.InvalidArgument, "rollout: model %q version %q has %v%% of the traffic: move it first (SetWeights or Switch)", r.model, v, percent(t.weights[v]))
	}
	r.tab.Store(t.without(v))
	r.forgetLocked(v)
	s := e.cur.Swap(nil)
	r.draining[s] = struct{}{}
	return s, r.stopMirrorLocked(v), nil
}

// Close stops the Router: new requests fail with serving.ErrClosed, a
// running plan stops where it is, and every version is closed once its
// requests in flight have finished (requests are bounded by their
// contexts, so Close waits for them as a batcher's Close waits for its
// running batches). It returns the versions' Close errors joined; later
// calls wait for the first and return nil.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return nil
	}
	r.closed = true
	r.stopPlanLocked()
	mirror := r.stopMirrorLocked("")
	t := r.tab.Load()
	r.tab.Store(&table{closed: true, weights: assignment{}})
	var current, retired []*slot
	for s := range r.draining { // retired earlier, still draining
		retired = append(retired, s)
	}
	for _, e := range t.entries {
		if s := e.cur.Swap(nil); s != nil {
			r.draining[s] = struct{}{}
			current = append(current, s)
		}
	}
	r.mu.Unlock()
	r.retireQuietly(mirror) // its mirrors hold references to versions
	r.checks.Wait()         // a check that fired finds the router closed and stops
	var errs []error
	for _, s := range current {
		s.release(r, true) // closes now, or when its last request leaves
	}
	for _, s := range current {
		<-s.done
		if s.err != nil {
			errs = append(errs, s.err)
		}
	}
	for _, s := range retired {
		<-s.done // its Close error, if any, was logged
	}
	if r.reg != nil {
		_ = r.reg.Unregister()
	}
	close(r.done)
	return errors.Join(errs...)
}

package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/servekit/servekit/serving"
)

// routerShadow is the Router's active mirror: a Shadow whose challenger is
// version v of the same Router.
type routerShadow struct {
	v string
	s *Shadow
}

// Mirror starts mirroring percent of the routed traffic to version v, as a
// shadow deployment: the version that answers a request is unchanged, and a
// copy goes to v off the request's path, to be compared (see Shadow and the
// package doc). Requests that v answers itself, and requests pinned to a
// version, are not mirrored. Mirrored requests reach v through the router's
// reference counting but are not counted in v's Stats, which stay about
// real traffic.
//
// Calling Mirror again for the same version changes only the percentage and
// keeps the comparison going (opts are then ignored); for another version
// it stops the current mirror first (as StopMirror) and starts afresh. opts
// configure the Shadow; by default it records metrics with the Router's
// meter provider and logs with its logger. The Router closes the Shadow on
// StopMirror, on Remove of v, and on Close.
func (r *Router) Mirror(v string, percent float64, opts ...ShadowOption) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return serving.ErrClosed
	}
	if _, ok := r.tab.Load().byName[v]; !ok {
		r.mu.Unlock()
		return r.unknown(v)
	}
	if cur := r.shadow.Load(); cur != nil && cur.v == v {
		r.mu.Unlock()
		return cur.s.SetPercent(percent)
	}
	base := []ShadowOption{WithShadowMeterProvider(r.cfg.mp), WithShadowLogger(r.cfg.log)}
	s, err := NewShadow(&mirrorTarget{r: r, v: v},
		append(append(base, opts...), WithMirrorPercent(percent), WithChallengerVersion(v))...)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	old := r.shadow.Swap(&routerShadow{v: v, s: s})
	r.mu.Unlock()
	if old != nil {
		return r.retireShadow(old, old.s.Close)
	}
	return nil
}

// StopMirror stops mirroring and waits, bounded by ctx, for the mirrors in
// flight; the last comparison stays in Status. Without an active mirror it
// returns an InvalidArgument error.
func (r *Router) StopMirror(ctx context.Context) error {
	r.mu.Lock()
	cur := r.shadow.Swap(nil)
	r.mu.Unlock()
	if cur == nil {
		return serving.Errorf(serving.InvalidArgument, "rollout: model %q: no mirror is active", r.model)
	}
	return r.retireShadow(cur, func() error { return cur.s.Shutdown(ctx) })
}

// Mirroring returns the version being mirrored to and its Shadow, if any.
func (r *Router) Mirroring() (version string, s *Shadow, ok bool) {
	if cur := r.shadow.Load(); cur != nil {
		return cur.v, cur.s, true
	}
	return "", nil, false
}

// retireShadow stops a Shadow taken out of service with stop (its Close or
// Shutdown) and keeps its final snapshot for Status.
func (r *Router) retireShadow(cur *routerShadow, stop func() error) error {
	err := stop()
	snap := cur.s.Snapshot()
	r.mu.Lock()
	r.lastShadow = &snap
	r.mu.Unlock()
	return err
}

// stopMirrorLocked takes the mirror out of service if it goes to v, or to
// any version when v is "", and returns it for retiring once mu is
// released (nil when there is nothing to retire).
func (r *Router) stopMirrorLocked(v string) *routerShadow {
	cur := r.shadow.Load()
	if cur == nil || v != "" && cur.v != v {
		return nil
	}
	r.shadow.Store(nil)
	return cur
}

// retireQuietly closes a mirror stopped by Remove or Close, logging what
// goes wrong: neither can fail because of a shadow.
func (r *Router) retireQuietly(cur *routerShadow) {
	if cur == nil {
		return
	}
	if err := r.retireShadow(cur, cur.s.Close); err != nil {
		r.cfg.log.Warn("rollout: stopping a mirror", "model", r.model, "version", cur.v, "err", err)
	}
}

// shadowStatusLocked is the active mirror's snapshot, else the last one's;
// with canary set, only a mirror to that version counts.
func (r *Router) shadowStatusLocked(canary string) *ShadowSnapshot {
	if cur := r.shadow.Load(); cur != nil && (canary == "" || cur.v == canary) {
		snap := cur.s.Snapshot()
		return &snap
	}
	if r.lastShadow == nil || canary != "" && r.lastShadow.Challenger != canary {
		return nil
	}
	snap := *r.lastShadow
	return &snap
}

// predictMirrored answers a routed request with version e and, when the
// active mirror samples it and e is not the mirror's version, mirrors it.
func (r *Router) predictMirrored(ctx context.Context, req *serving.Request, e *entry, s *slot) (*serving.Response, error) {
	sh := r.shadow.Load()
	if sh == nil || sh.v == e.name || !sh.s.sampled() {
		return r.call(ctx, req, e, s)
	}
	start := time.Now()
	resp, err := r.call(ctx, req, e, s)
	sh.s.mirror(ctx, req, resp, err, time.Since(start))
	return resp, err
}

// mirrorTarget is the challenger of a Router's Shadow: version v, reached
// through the router's reference counting (so a mirror never reaches a
// closed Predictor) but without its Stats.
type mirrorTarget struct {
	r *Router
	v string
}

func (m *mirrorTarget) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	e, s, err := m.r.route(m.v, "")
	if err != nil {
		return nil, err
	}
	defer s.release(m.r, false)
	in := *req
	in.Version = m.v
	resp, err := s.p.Predict(ctx, &in)
	if err != nil {
		return nil, err
	}
	if resp != nil && resp.Version != e.name {
		c := *resp
		c.Version = e.name
		resp = &c
	}
	return resp, nil
}

// MinAgreement is a Guard on the shadow comparison of the plan's canary: it
// is inconclusive until a mirror to the canary (Router.Mirror) has compared
// minPairs pairs, then fails when the lowest agreement rate of any output
// (ShadowSnapshot.MinAgreement) is below rate, e.g. 0.98. The comparison
// counts from when the mirror started, so the pairs mirrored before the
// plan began count too: mirror first, then start the plan.
func MinAgreement(rate float64, minPairs int64) Guard {
	return GuardFunc(func(_ context.Context, s Snapshot) error {
		sh := s.Shadow
		if sh == nil {
			return fmt.Errorf("%w: no mirror to canary %q (Router.Mirror)", ErrInconclusive, s.Canary.Version)
		}
		got, pairs, ok := sh.MinAgreement()
		if pairs < minPairs || !ok {
			return fmt.Errorf("%w: shadow of canary %q compared %d of %d pairs needed to judge", ErrInconclusive, s.Canary.Version, pairs, minPairs)
		}
		if got < rate {
			return fmt.Errorf("canary %q shadow agreement %.4f < %.4f over %d pairs", s.Canary.Version, got, rate, pairs)
		}
		return nil
	})
}

package rollout

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/servekit/servekit/serving"
)

// Versions lists the versions held, in the order they were added
// (serving.Versioned).
func (r *Router) Versions() []string { return slices.Clone(r.tab.Load().added) }

// Version returns a Predictor pinned to version v, or false when v is not
// held (serving.Versioned). It follows v by name, so it reaches whichever
// Predictor serves v now; its Ready and Metadata are v's own. Its requests
// go through the router (stats, reference counting) as requests with
// Request.Version = v do. Closing it closes the handle only: its Predict
// then returns serving.ErrClosed, while v stays in the router (Remove takes
// it out).
func (r *Router) Version(v string) (serving.Predictor, bool) {
	if _, ok := r.tab.Load().byName[v]; !ok {
		return nil, false
	}
	return &pinned{r: r, v: v}, true
}

// Metadata describes the model as the ready version with the most weight
// does, named after the router's model and that version (serving.Describer);
// with none ready, the version with the most weight; with none, only the
// model's name.
func (r *Router) Metadata() serving.Metadata {
	t := r.tab.Load()
	var md serving.Metadata
	pick := func(e *entry) bool {
		if s := e.cur.Load(); s != nil {
			md, _ = serving.MetadataOf(s.p)
			md.Version = e.name
			return true
		}
		return false
	}
	found := false
	for _, e := range t.heavy {
		if s := e.cur.Load(); s != nil && s.ready() && pick(e) {
			found = true
			break
		}
	}
	if !found && len(t.heavy) > 0 {
		pick(t.heavy[0])
	}
	md.Name = r.model
	return md
}

// Ready reports whether routed traffic can be served: the router is open
// and a version with weight is ready (serving.Readier).
func (r *Router) Ready() bool {
	t := r.tab.Load()
	if t.closed {
		return false
	}
	for _, e := range t.heavy {
		if s := e.cur.Load(); s != nil && s.ready() {
			return true
		}
	}
	return false
}

// pinned is the Predictor Version returns.
type pinned struct {
	r      *Router
	v      string
	closed atomic.Bool
}

var (
	_ serving.Predictor = (*pinned)(nil)
	_ serving.Describer = (*pinned)(nil)
	_ serving.Readier   = (*pinned)(nil)
)

func (p *pinned) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if p.closed.Load() {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "rollout: predict"); err != nil {
		return nil, err
	}
	e, s, err := p.r.route(p.v, "")
	if err != nil {
		return nil, err
	}
	return p.r.call(ctx, req, e, s)
}

func (p *pinned) Ready() bool {
	if p.closed.Load() {
		return false
	}
	e, ok := p.r.tab.Load().byName[p.v]
	if !ok {
		return false
	}
	s := e.cur.Load()
	return s != nil && s.ready()
}

func (p *pinned) Metadata() serving.Metadata {
	var md serving.Metadata
	if e, ok := p.r.tab.Load().byName[p.v]; ok {
		if s := e.cur.Load(); s != nil {
			md, _ = serving.MetadataOf(s.p)
		}
	}
	md.Name, md.Version = p.r.model, p.v
	return md
}

// Close closes the handle, not the version.
func (p *pinned) Close() error {
	p.closed.Store(true)
	return nil
}

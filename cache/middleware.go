package cache

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// Middleware returns a serving.Middleware that answers from c. Many
// middleware instances may share one Cache.
//
// Each layer reads the model's fingerprint (serving.Metadata.Fingerprint)
// once, when it wraps next, and keys its entries on it: a Predictor's
// weights are fixed for its life, and new weights come as a new Predictor
// wrapped anew (a repository's reload does this). Above a serving.Versioned
// layer, such as a rollout router, versions differ in weights, so no single
// fingerprint holds and none is used; nor is one without a fingerprint
// (fakes, remote models). Those layers key on model and version only, as
// before: put the cache below the router, one layer per version.
func (c *Cache) Middleware() serving.Middleware {
	return func(next serving.Predictor) serving.Predictor {
		p := &Predictor{c: c, next: next}
		if _, versioned := serving.VersionsOf(next); !versioned {
			md, _ := serving.MetadataOf(next)
			p.fp = md.Fingerprint
		}
		return p
	}
}

// Predictor is the caching layer in front of a Predictor; Cache.Middleware
// builds it. Responses it returns may be shared with other callers: treat
// them as read-only (each caller gets its own Response with its own ID, but
// the Outputs slice and tensor data are shared).
type Predictor struct {
	c      *Cache
	next   serving.Predictor
	fp     string // next's fingerprint, part of every key; may be empty
	closed atomic.Bool
	// last caches the attribute set of the last model and version seen:
	// one layer usually serves one, and a string compare is cheaper than
	// the shared map.
	last atomic.Pointer[lastAttrs]
}

type lastAttrs struct {
	model, version string
	set            *attrSet
}

func (p *Predictor) attrs(req *serving.Request) *attrSet {
	if l := p.last.Load(); l != nil && l.model == req.Model && l.version == req.Version {
		return l.set
	}
	s := p.c.tel.set(req.Model, req.Version)
	p.last.Store(&lastAttrs{req.Model, req.Version, s})
	return s
}

var (
	_ serving.Predictor = (*Predictor)(nil)
	_ serving.Wrapper   = (*Predictor)(nil)
	_ serving.Readier   = (*Predictor)(nil)
	_ serving.Describer = (*Predictor)(nil)
)

// The span's outcome attribute, pre-built so that setting it allocates nothing.
var (
	resultL1        = []attribute.KeyValue{attribute.String("cache.result", "hit_l1")}
	resultL2        = []attribute.KeyValue{attribute.String("cache.result", "hit_l2")}
	resultMiss      = []attribute.KeyValue{attribute.String("cache.result", "miss")}
	resultCoalesced = []attribute.KeyValue{attribute.String("cache.result", "coalesced")}
)

// Predict answers from the cache, or asks the wrapped Predictor once for all
// identical concurrent requests and keeps its answer if it succeeded.
func (p *Predictor) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if p.closed.Load() {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "cache: predict"); err != nil {
		return nil, err
	}
	c := p.c
	if bypass, _ := req.Params.Bool(serving.ParamCacheBypass); bypass || c.closed.Load() || !cacheable(req) {
		c.n.bypassed.Add(1)
		return p.next.Predict(ctx, req)
	}
	attrs := p.attrs(req)
	start := time.Now()
	// cache.lookup is a child span: it is recorded only inside a trace, so
	// an untraced hit costs no span (three allocations even on the no-op
	// global tracer). The span covers the lookups and any wait for the
	// computation, whose own spans become its children.
	var span trace.Span
	if trace.SpanContextFromContext(ctx).IsValid() {
		ctx, span = c.tel.tracer.Start(ctx, "cache.lookup")
		defer span.End()
	}

	h := c.hash(req, p.fp)
	if e := c.l1.get(h, req, p.fp, c.nowNanos()); e != nil {
		c.tel.hits.Add(ctx, 1, attrs.l1...)
		setResult(span, resultL1)
		serving.TimingOf(ctx).CacheResult(serving.CacheHit, time.Since(start))
		return withID(e.resp, req.ID), nil
	}
	lookup := time.Since(start)

	call, joined, err := c.flight.do(ctx, h, req, p.fp, p)
	// The protocol's statistics (serving.Timing): a request answered
	// without a run of its own is a hit (an L2 hit timed whole, a
	// coalesced one by its L1 lookup: its wait is the other request's
	// run); a miss is timed by its lookup.
	switch {
	case joined:
		c.tel.coalesced.Add(ctx, 1, attrs.plain...)
		setResult(span, resultCoalesced)
		serving.TimingOf(ctx).CacheResult(serving.CacheHit, lookup)
	case call != nil && call.fromL2:
		setResult(span, resultL2)
		serving.TimingOf(ctx).CacheResult(serving.CacheHit, time.Since(start))
	default:
		setResult(span, resultMiss)
		serving.TimingOf(ctx).CacheResult(serving.CacheMiss, lookup)
	}
	if err != nil {
		if err == errCacheClosed {
			return p.next.Predict(ctx, req) // closed between the check and now
		}
		if span != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		return nil, err
	}
	return withID(call.resp, req.ID), nil
}

// compute computes one flight on own, the request detached (which the
// stored entry keeps as its key): Redis first, when there is one, then the
// model. It returns the response to share, which it has stored.
func (p *Predictor) compute(ctx context.Context, own *serving.Request, h uint64) (*serving.Response, bool, error) {
	c := p.c
	attrs := p.attrs(own)
	var name string // in Redis
	if c.l2 != nil {
		name = c.l2.redisKey(own, p.fp)
		if resp, expires, ok := c.l2.get(ctx, name, own, p.fp, attrs); ok {
			c.n.hitsL2.Add(1)
			c.tel.hits.Add(ctx, 1, attrs.l2...)
			if local := c.expiry(); local != 0 && (expires == 0 || local < expires) {
				expires = local
			}
			c.store(h, own, p.fp, resp, expires, attrs)
			return resp, true, nil
		}
	}
	c.n.misses.Add(1)
	c.tel.misses.Add(ctx, 1, attrs.plain...)
	resp, err := p.next.Predict(ctx, own)
	if err != nil {
		return nil, false, err
	}
	if resp == nil {
		return nil, false, serving.Errorf(serving.Internal, "cache: model %q returned neither an answer nor an error", own.Model)
	}
	// Keep our own Response header, so that nothing the first caller does to
	// the one it receives reaches the cache.
	shared := *resp
	expires := c.expiry()
	if c.store(h, own, p.fp, &shared, expires, attrs) && c.l2 != nil {
		c.l2.put(name, own, p.fp, &shared, expires, attrs)
	}
	return &shared, false, nil
}

func setResult(span trace.Span, result []attribute.KeyValue) {
	if span != nil {
		span.SetAttributes(result...)
	}
}

// withID returns a shallow copy of resp answering request id.
func withID(resp *serving.Response, id string) *serving.Response {
	r := *resp
	r.ID = id
	return &r
}

// Unwrap implements serving.Wrapper.
func (p *Predictor) Unwrap() serving.Predictor { return p.next }

// Metadata describes the model as cached: the wrapped Predictor's
// metadata with ResponseCache set, which a transport reports as Triton's
// response_cache.
func (p *Predictor) Metadata() serving.Metadata {
	md, _ := serving.MetadataOf(p.next)
	md.ResponseCache = true
	return md
}

// Ready implements serving.Readier: false after Close.
func (p *Predictor) Ready() bool { return !p.closed.Load() }

// Close makes later calls return serving.ErrClosed and closes the wrapped
// Predictor, which the layer owns; it leaves the Cache open, which may serve
// other chains: its maker closes it (the rule on serving.Middleware). It
// is idempotent.
func (p *Predictor) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return serving.Close(p.next)
}

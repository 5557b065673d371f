package remote

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// Predictor is one model on a V2 server, as a serving.Predictor. It is
// safe for concurrent use.
type Predictor struct {
	model, version string
	t              transport
	cfg            config
	md             serving.Metadata
	closed         atomic.Bool
	// down is the readiness probe's verdict (WithReadinessProbe).
	down atomic.Bool
	// stopProbe ends the probe's goroutine, which closes probed when it
	// has; nil without a probe.
	stopProbe context.CancelFunc
	probed    chan struct{}
	closeOnce sync.Once
}

var (
	_ serving.Predictor = (*Predictor)(nil)
	_ serving.Describer = (*Predictor)(nil)
	_ serving.Readier   = (*Predictor)(nil)
)

// transport is one protocol's calls. Errors carry serving codes.
type transport interface {
	infer(ctx context.Context, req *serving.Request, hdr http.Header) (*serving.Response, error)
	live(ctx context.Context, hdr http.Header) (bool, error)
	ready(ctx context.Context, hdr http.Header) (bool, error)
	modelReady(ctx context.Context, hdr http.Header) (bool, error)
	serverMetadata(ctx context.Context, hdr http.Header) (oip.ServerMetadata, error)
	modelMetadata(ctx context.Context, hdr http.Header) (serving.Metadata, []string, error)
	// closeIdle releases the idle connections of a transport the
	// Predictor owns.
	closeIdle()
}

// Dial returns the model named model on the V2 server at target:
// "http://host:port" or "https://…" for REST, "grpc://host:port" for gRPC
// over HTTP/2 without TLS (what grpc-go and Triton listen with), "grpcs://…"
// for gRPC over TLS. A path in a REST target is a prefix the routes go
// under. Dial asks the server for the model's metadata (unless
// WithMetadata gives it), so a wrong address or model name fails here
// rather than on the first request; it opens no other connection.
func Dial(ctx context.Context, target, model string, opts ...Option) (*Predictor, error) {
	if model == "" {
		return nil, serving.Errorf(serving.InvalidArgument, "remote: no model name")
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "remote: target %q: %w", target, err)
	}
	if u.Host == "" {
		return nil, serving.Errorf(serving.InvalidArgument, "remote: target %q has no host", target)
	}
	p := &Predictor{model: model, cfg: newConfig(opts)}
	p.version = p.cfg.version
	switch u.Scheme {
	case "http", "https":
		p.t = newREST(u, model, p.version, &p.cfg)
	case "grpc", "grpcs":
		p.t = newGRPC(u, model, p.version, &p.cfg)
	default:
		return nil, serving.Errorf(serving.InvalidArgument, "remote: target %q: scheme %q is none of http, https, grpc, grpcs", target, u.Scheme)
	}
	if p.cfg.md != nil {
		p.md = *p.cfg.md
	} else {
		md, _, err := p.t.modelMetadata(ctx, p.header(ctx, ""))
		if err != nil {
			p.t.closeIdle()
			return nil, fmt.Errorf("remote: dial %s model %q: %w", target, model, err)
		}
		p.md = md
	}
	if p.md.Name == "" {
		p.md.Name = model
	}
	if p.version != "" {
		p.md.Version = p.version
	}
	if p.cfg.probe > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		p.stopProbe, p.probed = cancel, make(chan struct{})
		go p.probe(ctx)
	}
	return p, nil
}

// probe asks whether the model is ready every WithReadinessProbe, until
// ctx ends.
func (p *Predictor) probe(ctx context.Context) {
	defer close(p.probed)
	tick := time.NewTicker(p.cfg.probe)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, p.cfg.probe)
		ok, err := p.t.modelReady(cctx, p.header(cctx, ""))
		cancel()
		if ctx.Err() == nil {
			p.down.Store(!ok || err != nil)
		}
	}
}

// Predict sends req to the model and returns its answer. req.Model and
// req.Version are not sent (the Predictor's model and version are); the
// deadline of ctx travels as the protocol's: Triton's "timeout" parameter
// in microseconds (the least of it and one req sets), and grpc-timeout
// over gRPC. req.Key travels in the routing-key header and
// the trace context of ctx in the propagator's headers. Errors carry the
// serving code of the server's status (429 ResourceExhausted, 503
// Unavailable, both with Retry-After as serving.Error.RetryAfter); a
// server that cannot be reached is Unavailable.
func (p *Predictor) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if p.closed.Load() {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "remote: model "+p.model); err != nil {
		return nil, err
	}
	resp, err := p.t.infer(ctx, req, p.header(ctx, req.Key))
	if p.closed.Load() {
		p.t.closeIdle() // a call that outlived Close returns its connection to a closed pool
	}
	if err != nil {
		if cerr := serving.ContextError(ctx, "remote: model "+p.model); cerr != nil {
			return nil, cerr
		}
		if p.stopProbe != nil && serving.CodeOf(err) == serving.Unavailable {
			p.down.Store(true) // until the probe finds the model ready
		}
		return nil, fmt.Errorf("remote: model %q: %w", p.model, err)
	}
	if resp.Version == "" {
		resp.Version = p.version
	}
	return resp, nil
}

// header returns the headers of one call: WithHeader's, the routing key,
// the trace context.
func (p *Predictor) header(ctx context.Context, key string) http.Header {
	h := make(http.Header, len(p.cfg.header)+2)
	for k, v := range p.cfg.header {
		h[k] = slices.Clone(v) // the call's own: nothing may append to the Option's
	}
	if key != "" && p.cfg.keyHeader != "" {
		h.Set(p.cfg.keyHeader, key)
	}
	prop := p.cfg.propagator
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	prop.Inject(ctx, propagation.HeaderCarrier(h))
	return h
}

// Metadata returns the model's metadata as Dial read it (or WithMetadata
// gave it), its Version the pinned one.
func (p *Predictor) Metadata() serving.Metadata { return p.md }

// Ready reports whether the Predictor is open and, with
// WithReadinessProbe, whether the probe last found the model ready. It
// makes no call: ServerReady and ModelReady ask the server, with a
// context.
func (p *Predictor) Ready() bool { return !p.closed.Load() && !p.down.Load() }

// Close makes Predict return serving.ErrClosed, stops the readiness probe
// and releases the idle connections of the transport the Predictor owns.
// It is idempotent.
func (p *Predictor) Close() error {
	p.closed.Store(true)
	p.closeOnce.Do(func() {
		if p.stopProbe != nil {
			p.stopProbe()
			<-p.probed
		}
	})
	p.t.closeIdle()
	return nil
}

// ServerLive reports the server's liveness (GET /v2/health/live, the
// ServerLive RPC): false is an answer, an error means none came.
func (p *Predictor) ServerLive(ctx context.Context) (bool, error) {
	return call(p, ctx, p.t.live)
}

// ServerReady reports the server's readiness (GET /v2/health/ready, the
// ServerReady RPC).
func (p *Predictor) ServerReady(ctx context.Context) (bool, error) {
	return call(p, ctx, p.t.ready)
}

// ModelReady reports the readiness of the model, at the pinned version if
// any (GET /v2/models/{name}[/versions/{v}]/ready, the ModelReady RPC). A
// model the server does not know is a NotFound error.
func (p *Predictor) ModelReady(ctx context.Context) (bool, error) {
	return call(p, ctx, p.t.modelReady)
}

// ServerMetadata asks the server for its name, version and extensions.
func (p *Predictor) ServerMetadata(ctx context.Context) (oip.ServerMetadata, error) {
	return call(p, ctx, p.t.serverMetadata)
}

// ModelMetadata asks the server for the model's metadata now, and the
// versions the server lists for it.
func (p *Predictor) ModelMetadata(ctx context.Context) (serving.Metadata, []string, error) {
	var versions []string
	md, err := call(p, ctx, func(ctx context.Context, h http.Header) (serving.Metadata, error) {
		md, v, err := p.t.modelMetadata(ctx, h)
		versions = v
		return md, err
	})
	return md, versions, err
}

func call[T any](p *Predictor, ctx context.Context, f func(context.Context, http.Header) (T, error)) (T, error) {
	var zero T
	if p.closed.Load() {
		return zero, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "remote"); err != nil {
		return zero, err
	}
	v, err := f(ctx, p.header(ctx, ""))
	if err != nil {
		if cerr := serving.ContextError(ctx, "remote"); cerr != nil {
			return zero, cerr
		}
		return zero, fmt.Errorf("remote: model %q: %w", p.model, err)
	}
	return v, nil
}

// withTimeout returns a copy of params with the deadline of ctx as
// Triton's "timeout" parameter, in whole microseconds (at least 1), unless
// params has a shorter one: the server's queue gives up when the caller
// has, instead of running a request nobody waits for.
func withTimeout(ctx context.Context, params serving.Params) serving.Params {
	out := make(serving.Params, len(params)+2)
	maps.Copy(out, params)
	dl, ok := ctx.Deadline()
	if !ok {
		return out
	}
	us := max(int64(time.Until(dl)/time.Microsecond), 1)
	if cur, set := params.Int(serving.ParamTimeout); !set || cur <= 0 || us < cur {
		out[serving.ParamTimeout] = us
	}
	return out
}

package rollout

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// Shadow mirrors a sample of a primary's requests to a challenger, off the
// primary's path, and compares each pair of answers. Build one with
// NewShadow and put its Middleware in front of the primary, or let
// Router.Mirror do both. A Shadow is safe for concurrent use; it owns the
// goroutines of its mirrors, which Close waits for, but not the challenger,
// which its maker closes.
type Shadow struct {
	challenger serving.Predictor
	cfg        shadowConfig
	tel        *shadowTelemetry

	// sample is the sampling threshold: a request is mirrored when a random
	// uint64 is below it; math.MaxUint64 mirrors all, 0 none. percent keeps
	// the float64 bits of the percentage it was set from.
	sample, percent atomic.Uint64

	// state counts the mirrors in flight, with closedBit set once Close or
	// Shutdown began: one atomic both bounds concurrency and gates new
	// mirrors against a closing Shadow, without a lock on the primary's path.
	// Whoever brings it to exactly closedBit (the last mirror to finish, or
	// Close when none ran) closes drained.
	state   atomic.Int64
	drained chan struct{}

	mu     sync.Mutex
	keys   map[primaryKey]*pairStats // guarded by mu
	last   atomic.Pointer[pairStats] // the last entry used, for a lock-free hit
	panics atomic.Bool               // whether a challenger panic was logged
}

const closedBit = int64(1) << 62

// NewShadow returns a Shadow that mirrors to challenger. It fails with an
// InvalidArgument error on an option out of range.
func NewShadow(challenger serving.Predictor, opts ...ShadowOption) (*Shadow, error) {
	if challenger == nil {
		return nil, fmt.Errorf("%w: nil challenger", errShadowConfig)
	}
	cfg, err := newShadowConfig(challenger, opts)
	if err != nil {
		return nil, err
	}
	s := &Shadow{challenger: challenger, cfg: cfg, drained: make(chan struct{}), keys: make(map[primaryKey]*pairStats)}
	s.setPercent(cfg.percent)
	if s.tel, err = newShadowTelemetry(s, cfg.meters); err != nil {
		return nil, err
	}
	return s, nil
}

// SetPercent changes the share of requests mirrored (0 to 100).
func (s *Shadow) SetPercent(p float64) error {
	if !validPercent(p) {
		return fmt.Errorf("%w: mirror percent %v, want 0 to 100", errShadowConfig, p)
	}
	s.setPercent(p)
	return nil
}

func (s *Shadow) setPercent(p float64) {
	var t uint64
	switch {
	case p >= 100:
		t = math.MaxUint64
	case p > 0:
		t = uint64(p / 100 * (1 << 64)) // < 2⁶⁴: p < 100
	}
	s.sample.Store(t)
	s.percent.Store(math.Float64bits(p))
}

// Challenger is the version label of the challenger.
func (s *Shadow) Challenger() string { return s.cfg.challenger }

// sampled decides whether the next request is mirrored.
func (s *Shadow) sampled() bool {
	switch t := s.sample.Load(); t {
	case 0:
		return false
	case math.MaxUint64:
		return s.state.Load()&closedBit == 0
	default:
		return rand.Uint64() < t && s.state.Load()&closedBit == 0
	}
}

// Middleware returns a serving.Middleware that mirrors the requests of the
// Predictor it wraps. The layer returns exactly what that Predictor returns.
// Closing the layer (serving.Close of a chain) makes it refuse requests and
// closes the layers below; it does not close the Shadow, which may outlive
// it: close that yourself.
func (s *Shadow) Middleware() serving.Middleware {
	return func(next serving.Predictor) serving.Predictor { return &shadowed{s: s, next: next} }
}

// shadowed is the layer Middleware puts in front of the primary.
type shadowed struct {
	s      *Shadow
	next   serving.Predictor
	closed atomic.Bool
}

var (
	_ serving.Predictor = (*shadowed)(nil)
	_ serving.Wrapper   = (*shadowed)(nil)
	_ serving.Readier   = (*shadowed)(nil)
)

func (p *shadowed) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if p.closed.Load() {
		return nil, serving.ErrClosed
	}
	if !p.s.sampled() {
		return p.next.Predict(ctx, req)
	}
	start := time.Now()
	resp, err := p.next.Predict(ctx, req)
	p.s.mirror(ctx, req, resp, err, time.Since(start))
	return resp, err
}

func (p *shadowed) Unwrap() serving.Predictor { return p.next }
func (p *shadowed) Ready() bool               { return !p.closed.Load() }

// Close makes the layer refuse requests with serving.ErrClosed. It is
// idempotent and closes nothing else: serving.Close goes on to the layers
// below.
func (p *shadowed) Close() error {
	p.closed.Store(true)
	return nil
}

// mirror sends a copy of req to the challenger, after the primary answered
// it with resp or err in primaryLatency, and compares the answers when the
// challenger's arrives. It returns at once: when MaxMirrors are in flight,
// or the Shadow is closed, the request is dropped and counted. Everything
// kept is copied first, so the caller may reuse req and resp. The layer of
// Middleware calls it for sampled requests; the Router calls it itself. A request the primary failed with Canceled is not
// mirrored: its caller went away, which says nothing about either model.
func (s *Shadow) mirror(ctx context.Context, req *serving.Request, resp *serving.Response, err error, primaryLatency time.Duration) {
	if serving.CodeOf(err) == serving.Canceled {
		return
	}
	st := s.stats(keyOf(req, resp, err))
	st.sampled.Add(1)
	if !s.acquire() {
		st.dropped.Add(1)
		return
	}
	st.mirrored.Add(1)
	m := &completedMirror{primaryErr: err, primaryLatency: primaryLatency}
	if err == nil {
		m.primary = make([]serving.Tensor, len(resp.Outputs))
		for i, t := range resp.Outputs {
			m.primary[i] = t.Clone()
		}
	}
	go s.run(ctx, st, detach(req), m)
}

// acquire takes a mirror slot, or reports that none is free or the Shadow
// is closed.
func (s *Shadow) acquire() bool {
	max := int64(s.cfg.maxMirrors)
	for {
		old := s.state.Load()
		if old&closedBit != 0 || old >= max {
			return false
		}
		if s.state.CompareAndSwap(old, old+1) {
			return true
		}
	}
}

func (s *Shadow) release() {
	if s.state.Add(-1) == closedBit {
		close(s.drained)
	}
}

// detach deep-copies what the challenger reads: the caller may reuse its
// buffers once Predict returns, long before the mirror runs. The version is
// cleared: it names the primary's version, not the challenger's.
func detach(req *serving.Request) *serving.Request {
	c := req.Clone()
	for i := range c.Inputs {
		c.Inputs[i] = c.Inputs[i].Clone()
	}
	c.Version = ""
	return c
}

// completedMirror is one mirrored pair on its way to the statistics.
type completedMirror struct {
	primary        []serving.Tensor // the primary's outputs (copies), nil on error
	primaryErr     error
	primaryLatency time.Duration
	shadowCode     serving.Code
	shadowLatency  time.Duration
	timedOut       bool
	panicked       bool
	names          []string // output names of results
	results        []outputResult
}

// run is a mirror's goroutine: ask the challenger under its own deadline,
// compare, record. It holds a slot until the challenger returns, even past
// the deadline, so that a challenger that ignores its context cannot pile
// up goroutines: the slots stay taken and new mirrors are dropped.
func (s *Shadow) run(ctx context.Context, st *pairStats, req *serving.Request, m *completedMirror) {
	defer s.release()
	// WithoutCancel keeps ctx's values (the trace) but not its end: the
	// primary's caller has its answer and may be gone.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.timeout)
	start := time.Now()
	resp, err := s.ask(mctx, req, &m.panicked)
	m.shadowLatency = time.Since(start)
	cancel()
	if m.shadowLatency >= s.cfg.timeout || serving.CodeOf(err) == serving.DeadlineExceeded {
		m.timedOut = true
		err = serving.Errorf(serving.DeadlineExceeded, "rollout: shadow: challenger %s did not answer within %v", s.cfg.challenger, s.cfg.timeout)
	}
	m.shadowCode = serving.CodeOf(err)
	if err == nil && m.primaryErr == nil {
		s.compare(m, resp)
	}
	s.mu.Lock()
	st.record(m)
	s.mu.Unlock()
	s.tel.recorded(ctx, st, m)
}

// ask calls the challenger, turning a panic into an Internal error.
func (s *Shadow) ask(ctx context.Context, req *serving.Request, panicked *bool) (resp *serving.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			*panicked = true
			resp, err = nil, serving.Errorf(serving.Internal, "rollout: shadow: challenger %s panicked: %v", s.cfg.challenger, r)
			// The stack once per Shadow: enough to find the bug, never a flood.
			if s.panics.CompareAndSwap(false, true) {
				s.cfg.logger.Error("rollout: shadow: challenger panicked; later panics are only counted",
					"challenger", s.cfg.challenger, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
		}
	}()
	resp, err = s.challenger.Predict(ctx, req)
	if err == nil && resp == nil {
		err = serving.Errorf(serving.Internal, "rollout: shadow: challenger %s returned no response and no error", s.cfg.challenger)
	}
	return resp, err
}

// compare compares every output the primary answered with the challenger's
// output of the same name.
func (s *Shadow) compare(m *completedMirror, resp *serving.Response) {
	m.names = make([]string, len(m.primary))
	m.results = make([]outputResult, len(m.primary))
	for i, p := range m.primary {
		rule, ok := s.cfg.rules[p.Name]
		if !ok {
			rule = s.cfg.defaultRule
		}
		c, found := resp.Output(p.Name)
		m.names[i] = p.Name
		m.results[i] = compareOutput(rule, p, c, found)
	}
}

// keyOf names the primary that answered: the response's model and version,
// or the request's model alone when the primary failed.
func keyOf(req *serving.Request, resp *serving.Response, err error) primaryKey {
	if err != nil || resp == nil {
		return primaryKey{model: req.Model}
	}
	k := primaryKey{resp.Model, resp.Version}
	if k.model == "" {
		k.model = req.Model
	}
	return k
}

// stats returns the entry of k, making it on first use.
func (s *Shadow) stats(k primaryKey) *pairStats {
	if st := s.last.Load(); st != nil && st.key == k {
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.keys[k]
	if st == nil {
		if len(s.keys) >= maxKeys {
			k = primaryKey{model: k.model, version: "other"}
			if st = s.keys[k]; st != nil {
				return st
			}
		}
		st = &pairStats{key: k}
		s.tel.attach(st, s.cfg.challenger)
		s.keys[k] = st
	}
	s.last.Store(st)
	return st
}

// Snapshot returns what the Shadow has measured, over every primary it has
// mirrored (metrics keep them apart by model and version).
func (s *Shadow) Snapshot() ShadowSnapshot {
	state := s.state.Load()
	snap := ShadowSnapshot{
		Challenger:  s.cfg.challenger,
		Active:      state&closedBit == 0,
		Percent:     math.Float64frombits(s.percent.Load()),
		MaxInFlight: s.cfg.maxMirrors,
		InFlight:    state &^ closedBit,
	}
	var all pairStats
	s.mu.Lock()
	for _, st := range s.keys {
		all.merge(st)
	}
	s.mu.Unlock()
	all.snapshot(&snap)
	return snap
}

// ErrShadowStuck is returned by Close and Shutdown when mirrors are still
// running when they give up: a challenger that ignores its context.
var ErrShadowStuck = serving.Errorf(serving.Unavailable, "rollout: shadow: mirrors still running")

// Shutdown stops mirroring and waits for the mirrors in flight to finish
// (each ends within the mirror timeout if the challenger honours its
// context) or for ctx to end, in which case it returns an error wrapping
// ErrShadowStuck. It is safe to call again, and with Close.
func (s *Shadow) Shutdown(ctx context.Context) error {
	if old := s.state.Or(closedBit); old&closedBit == 0 {
		if old == 0 {
			close(s.drained)
		}
		// Mirrors still running record into the statistics, which the
		// callbacks no longer read: a closed Shadow exports nothing.
		defer s.tel.close()
	}
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %d mirrors to %s: %w", ErrShadowStuck, s.state.Load()&^closedBit, s.cfg.challenger, ctx.Err())
	}
}

// Close stops mirroring and waits for the mirrors in flight, at most the
// mirror timeout and one second more, past which a challenger is ignoring
// its context and Close returns an error wrapping ErrShadowStuck (the
// mirrors end when the challenger returns). Mirrored requests do not delay
// it beyond that. Close is idempotent; after it, Snapshot still works.
func (s *Shadow) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout+time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

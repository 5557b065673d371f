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

	// state counts the mirrors admitted and not finished (queued or
	// running), with closedBit set once Close or Shutdown began: one atomic
	// both bounds them and gates new mirrors against a closing Shadow,
	// without a lock on the primary's path. Whoever brings it to exactly
	// closedBit (the last mirror to finish, or Shutdown when none was in
	// flight) closes drained.
	state   atomic.Int64
	drained chan struct{}

	// queue holds admitted mirrors until the dispatcher starts them; its
	// capacity is the bound on state, so a send never blocks. running
	// counts the runner goroutines (at most maxMirrors); only the
	// dispatcher starts them, and runners, which it tracks, take further
	// queued mirrors themselves before they exit.
	queue      chan *mirrorJob
	running    atomic.Int64
	runners    sync.WaitGroup
	stop       chan struct{} // closed once (stopOnce) when the queue is to be dropped
	stopOnce   sync.Once
	dispatched chan struct{} // closed when the dispatcher has returned
	// idle is set while the dispatcher sleeps without a ticker; the first
	// mirror queued after that claims it (CompareAndSwap) and sends one
	// token on wake, so an idle Shadow costs no wake-ups at all and a busy
	// one costs its callers none.
	idle atomic.Bool
	wake chan struct{} // capacity 1

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
	s := &Shadow{
		challenger: challenger, cfg: cfg, keys: make(map[primaryKey]*pairStats),
		drained: make(chan struct{}), stop: make(chan struct{}), dispatched: make(chan struct{}),
		queue: make(chan *mirrorJob, cfg.maxMirrors+cfg.queue), wake: make(chan struct{}, 1),
	}
	s.setPercent(cfg.percent)
	if s.tel, err = newShadowTelemetry(s, cfg.meters); err != nil {
		return nil, err
	}
	go s.dispatch()
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
	switch f := p / 100 * (1 << 64); {
	case f >= 1<<64: // 100 %, or so close that it rounds there
		t = math.MaxUint64
	case p > 0:
		t = uint64(f)
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
// Closing the layer makes it refuse requests and closes the primary it
// wraps; it does not close the Shadow, which may outlive it: close that
// yourself, after the chains that use it.
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

// Close makes the layer refuse requests with serving.ErrClosed and closes
// the primary it wraps, which it owns; the Shadow (and its challenger) stay
// open for their maker to close (the rule on serving.Middleware). It is
// idempotent.
func (p *shadowed) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return serving.Close(p.next)
}

// mirror queues a copy of req for the challenger, after the primary
// answered it with resp or err in primaryLatency; the challenger's answer
// is compared with the primary's when it comes. It returns at once: when
// MaxMirrors are running and the queue is full, or the Shadow is closed,
// the request is dropped and counted. Everything kept is copied first, so
// the caller may reuse req and resp. The layer of Middleware calls it for
// sampled requests; the Router calls it itself. A request the primary
// failed with Canceled is not mirrored: its caller went away, which says
// nothing about either model.
//
// The caller's work here is the copies and a send on a buffered channel
// that no goroutine waits on: while mirrors keep coming it starts no
// goroutine and wakes none (both cost a scheduler wake-up, a system call,
// on the caller's time), and the dispatcher picks the mirror up within
// dispatchTick. Only the first mirror after an idle spell wakes the
// dispatcher.
func (s *Shadow) mirror(ctx context.Context, req *serving.Request, resp *serving.Response, err error, primaryLatency time.Duration) {
	if serving.CodeOf(err) == serving.Canceled {
		return
	}
	st := s.stats(keyOf(req, resp, err))
	st.sampled.Add(1)
	if !s.admit() {
		st.dropped.Add(1)
		return
	}
	j := &mirrorJob{ctx: ctx, st: st, req: detach(req)}
	j.primaryErr, j.primaryLatency = err, primaryLatency
	if err == nil && resp == nil { // a broken primary: its caller gets what it gave
		j.primaryErr = serving.Errorf(serving.Internal, "rollout: shadow: primary returned no response and no error")
	}
	if j.primaryErr == nil {
		j.primary = make([]serving.Tensor, len(resp.Outputs))
		for i, t := range resp.Outputs {
			j.primary[i] = t.Clone()
		}
	}
	select {
	case s.queue <- j:
		if s.idle.Load() && s.idle.CompareAndSwap(true, false) {
			s.wake <- struct{}{} // never blocks: one token per idle spell
		}
	default: // unreachable: the queue holds every admitted mirror
		st.dropped.Add(1)
		s.release()
	}
}

// admit takes a place for a mirror, or reports that none is free or the
// Shadow is closed.
func (s *Shadow) admit() bool {
	limit := int64(cap(s.queue))
	for {
		old := s.state.Load()
		if old&closedBit != 0 || old >= limit {
			return false
		}
		if s.state.CompareAndSwap(old, old+1) {
			return true
		}
	}
}

// release gives back an admitted mirror's place.
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

// run is one mirror, in a runner goroutine: ask the challenger under its
// own deadline, compare, record. It holds its runner until the challenger
// returns, even past the deadline, so that a challenger that ignores its
// context cannot pile up goroutines: the runners stay busy, the queue
// fills, and new mirrors are dropped.
func (s *Shadow) run(j *mirrorJob) {
	defer s.release()
	ctx, st, req, m := j.ctx, j.st, j.req, &j.completedMirror
	st.mirrored.Add(1)
	// WithoutCancel keeps ctx's values (the trace) but not its end: the
	// primary's caller has its answer and may be gone. The primary's
	// serving.Timing is dropped: the challenger's run is not the request's.
	mctx, cancel := context.WithTimeout(serving.WithTiming(context.WithoutCancel(ctx), nil), s.cfg.timeout)
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
		Queued:      int64(len(s.queue)),
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

// Shutdown stops mirroring gracefully: no request is mirrored any more,
// and Shutdown waits until the mirrors admitted before, queued ones
// included, have run, or until ctx ends. Then it drops what is still
// queued and, if mirrors are still running (a challenger slower than ctx,
// or one ignoring its context), returns an error wrapping ErrShadowStuck;
// they finish on their own. It is safe to call again, and with Close.
func (s *Shadow) Shutdown(ctx context.Context) error { return s.shutdown(ctx, false) }

// Close stops mirroring at once: queued mirrors are dropped (and counted),
// and Close waits for the running ones, at most the mirror timeout and a
// second more, past which a challenger is ignoring its context and Close
// returns an error wrapping ErrShadowStuck (those mirrors end when the
// challenger returns). Close is idempotent; after it, Snapshot still
// works.
func (s *Shadow) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout+time.Second)
	defer cancel()
	return s.shutdown(ctx, true)
}

func (s *Shadow) shutdown(ctx context.Context, drop bool) error {
	if old := s.state.Or(closedBit); old&closedBit == 0 {
		if old == 0 {
			close(s.drained)
		}
		// Mirrors still running record into the statistics, which the
		// callbacks no longer read: a closed Shadow exports nothing.
		defer s.tel.close()
	}
	var queue chan *mirrorJob // nil, which never receives, until halted
	halt := func() {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.dispatched // prompt: the dispatcher drops the queue and returns
		queue = s.queue
	}
	if drop {
		halt()
	}
	for {
		select {
		case <-s.drained:
			halt()
			s.runners.Wait() // prompt: every runner is past its last mirror
			return nil
		case j := <-queue:
			// Admitted just before the close, queued after the dispatcher
			// had gone.
			s.discard(j)
		case <-ctx.Done():
			halt()
			select {
			case <-s.drained: // dropping the queue was enough
				s.runners.Wait()
				return nil
			default:
			}
			return fmt.Errorf("%w: %d mirrors to %s: %w", ErrShadowStuck, s.state.Load()&^closedBit, s.cfg.challenger, ctx.Err())
		}
	}
}

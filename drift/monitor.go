package drift

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/servekit/servekit/internal/observe"
	"github.com/servekit/servekit/serving"
)

// ErrDrift is wrapped by Status.Err when a model version's drift alarm is
// raised.
var ErrDrift = errors.New("drift: alarm raised")

// ErrDataQuality is wrapped by Status.Err when a data-quality check's
// alarm is raised.
var ErrDataQuality = errors.New("drift: data-quality alarm raised")

// errClosed is returned by the monitor's methods after Close.
var errClosed = serving.Errorf(serving.Unavailable, "drift: monitor closed")

// Monitor watches model versions' traffic for drift from their reference
// profiles. Its Middleware observes answered requests; a worker goroutine
// it owns bins the values into windows, evaluates each window, keeps
// results, raises alerts and exports metrics. All methods are safe for
// concurrent use; Close stops the worker.
type Monitor struct {
	cfg *config

	in     chan *record
	ctrl   chan func()
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
	closed atomic.Bool

	mu    sync.Mutex                      // serialises writers of plans
	plans atomic.Pointer[map[mvKey]*plan] // read on the request path
	pool  sync.Pool                       // *record

	w   *worker // state owned by the worker goroutine
	pub published
	n   counters
	tel *telemetry
}

type mvKey = observe.Key

// counters are the monitor's own tallies (Stats).
type counters struct {
	requests, rows, dropped, unprofiled, rejected, panics atomic.Int64
}

// Stats are a monitor's counters since it started.
type Stats struct {
	// Requests and Rows observed (taken by the worker); Dropped requests
	// found the queue full and were not observed.
	Requests int64
	Rows     int64
	Dropped  int64
	// Unprofiled requests had no profile (nor one being learned);
	// Rejected ones lacked a feature's tensor or column.
	Unprofiled int64
	Rejected   int64
	// Windows evaluated and Alerts raised, over all model versions.
	Windows int64
	Alerts  int64
	// Panics recovered in alert functions or observation.
	Panics int64
}

// plan is what the request path needs about one profiled (or learning)
// model version; immutable, replaced as a whole.
type plan struct {
	key      mvKey // version "" serves every version without its own plan
	profile  *Profile
	features []Feature
	ex       extractors
	slot     []int     // per feature: its index among the numerical or categorical ones
	bins     []*binner // per numerical feature of a profile
	nNum     int
	nCat     int
	learn    int // > 0: build the profile from the first learn rows
	popts    []ProfileOption
	print    string
}

func newPlan(key mvKey, p *Profile, features []Feature, learn int, popts []ProfileOption) (*plan, error) {
	pl := &plan{key: key, profile: p, features: features, learn: learn, popts: popts}
	var fps []FeatureProfile
	if p != nil {
		fps = p.Features
		pl.features = make([]Feature, len(p.Features))
		for i := range p.Features {
			pl.features[i] = p.Features[i].Feature
		}
		pl.print = p.Fingerprint()
		pl.bins = make([]*binner, len(p.Features))
		for i := range p.Features {
			if p.Features[i].Kind == Numerical {
				pl.bins[i] = newBinner(p.Features[i].Edges)
			}
		}
	}
	var err error
	if pl.ex, err = compileExtractors(pl.features, fps); err != nil {
		return nil, err
	}
	pl.slot = make([]int, len(pl.features))
	for i, f := range pl.features {
		if f.Kind == Categorical {
			pl.slot[i] = pl.nCat
			pl.nCat++
		} else {
			pl.slot[i] = pl.nNum
			pl.nNum++
		}
	}
	return pl, nil
}

// record carries one request's feature values to the worker, feature by
// feature: num[slot*rows+r] for numerical features, cat (category indices)
// or, while learning, str for categorical ones.
type record struct {
	plan           *plan
	model, version string
	rows           int
	num            []float64
	cat            []int32
	str            []string
}

// NewMonitor starts a monitor and its worker.
func NewMonitor(opts ...Option) (*Monitor, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg:    cfg,
		in:     make(chan *record, cfg.queue),
		ctrl:   make(chan func()),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	m.pool.New = func() any { return new(record) }
	empty := map[mvKey]*plan{}
	m.plans.Store(&empty)
	m.pub.init(cfg.history)
	for _, p := range cfg.profiles {
		if err := m.AddProfile(p); err != nil {
			return nil, err
		}
	}
	if m.tel, err = newTelemetry(m, cfg.meters); err != nil {
		return nil, fmt.Errorf("drift: metrics: %w", err)
	}
	m.w = newWorker(m)
	go m.w.run()
	return m, nil
}

// AddProfile monitors the profile's model version (every version of the
// model without a profile of its own, if the profile's version is empty),
// replacing any profile or learning it had. Its windows start afresh.
func (m *Monitor) AddProfile(p *Profile) error {
	if p == nil {
		return invalid("nil profile")
	}
	if err := p.Validate(); err != nil {
		return err
	}
	for i := range p.Features {
		fp := &p.Features[i]
		if s, ok := m.cfg.eval.methods[fp.Name]; ok && !slices.Contains(computes(fp), s) {
			return invalid("profile %s: feature %q: %s is not computed for a %s feature", p, fp.Name, s, fp.Kind)
		}
	}
	pl, err := newPlan(mvKey{Model: p.Model, Version: p.Version}, p, nil, 0, nil)
	if err != nil {
		return err
	}
	m.setPlan(pl)
	return nil
}

// Learn builds the reference of a model version from its first rows
// answered rows, then monitors the traffic that follows against it (version
// "": each version of the model without a profile learns its own). The
// learned profile is available from Profile, to be saved beside the model
// version. The rows that complete the reference are not also monitored.
func (m *Monitor) Learn(model, version string, features []Feature, rows int, opts ...ProfileOption) error {
	if rows < 1 {
		return invalid("learn from %d rows, want at least 1", rows)
	}
	// Validate the features and options as a builder would.
	if _, err := NewProfileBuilder(model, version, features, opts...); err != nil {
		return err
	}
	pl, err := newPlan(mvKey{Model: model, Version: version}, nil, slices.Clone(features), rows, opts)
	if err != nil {
		return err
	}
	m.setPlan(pl)
	return nil
}

func (m *Monitor) setPlan(pl *plan) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.plans.Load()
	next := make(map[mvKey]*plan, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[pl.key] = pl
	m.plans.Store(&next)
}

func (m *Monitor) lookup(model, version string) *plan {
	plans := *m.plans.Load()
	if pl, ok := plans[mvKey{Model: model, Version: version}]; ok {
		return pl
	}
	return plans[mvKey{Model: model, Version: ""}]
}

// Profile returns the profile a model version is monitored against,
// including one learned from live traffic.
func (m *Monitor) Profile(model, version string) (*Profile, bool) {
	if pl := m.lookup(model, version); pl != nil && pl.profile != nil {
		return pl.profile, true
	}
	return nil, false
}

// observe extracts a request's features and hands them to the worker, or
// counts why not. It never blocks and never fails the request.
func (m *Monitor) observe(req *serving.Request, resp *serving.Response) {
	if m.closed.Load() {
		return
	}
	defer func() {
		if recover() != nil {
			m.n.panics.Add(1)
		}
	}()
	model, version := req.Model, resp.Version
	if model == "" {
		model = resp.Model
	}
	if version == "" {
		version = req.Version
	}
	pl := m.lookup(model, version)
	if pl == nil {
		m.n.unprofiled.Add(1)
		return
	}
	rows, err := pl.ex.rows(req, resp)
	if err != nil {
		m.n.rejected.Add(1)
		return
	}
	if rows == 0 {
		return
	}
	rec := m.pool.Get().(*record)
	rec.plan, rec.model, rec.version, rec.rows = pl, model, version, rows
	rec.num = grow(rec.num, pl.nNum*rows)
	if pl.profile == nil {
		rec.str = grow(rec.str, pl.nCat*rows)
	} else {
		rec.cat = grow(rec.cat, pl.nCat*rows)
	}
	// The values are copied here, before Predict returns: the caller may
	// reuse its buffers as soon as it does.
	for i := range pl.ex {
		e, s := &pl.ex[i], pl.slot[i]
		switch {
		case e.f.Kind == Numerical:
			e.numbers(req, resp, rows, rec.num[s*rows:(s+1)*rows])
		case pl.profile == nil:
			e.strings(req, resp, rows, rec.str[s*rows:(s+1)*rows])
		default:
			e.indices(req, resp, rows, rec.cat[s*rows:(s+1)*rows])
		}
	}
	select {
	case m.in <- rec:
	default:
		m.n.dropped.Add(1)
		m.release(rec)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (m *Monitor) release(rec *record) {
	rec.plan = nil
	clear(rec.str) // let the strings go
	m.pool.Put(rec)
}

// Flush waits until the worker has taken in every request observed before
// the call, so that Status, Results and Snapshot reflect them. It does not
// close a window early.
func (m *Monitor) Flush(ctx context.Context) error {
	return m.do(ctx, func() {})
}

// do runs f on the worker goroutine after it has taken in what is queued.
func (m *Monitor) do(ctx context.Context, f func()) error {
	if m.closed.Load() {
		return errClosed
	}
	return observe.Do(ctx, m.ctrl, m.done, errClosed, "drift: waiting for the worker", func() {
		m.w.drain()
		f()
	})
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() Stats {
	windows, alerts := m.pub.totals()
	return Stats{
		Requests: m.n.requests.Load(), Rows: m.n.rows.Load(), Dropped: m.n.dropped.Load(),
		Unprofiled: m.n.unprofiled.Load(), Rejected: m.n.rejected.Load(),
		Windows: windows, Alerts: alerts, Panics: m.n.panics.Load(),
	}
}

// Close stops the worker, dropping what is still queued, and unregisters
// the metrics. Later observations are not recorded (requests still pass
// through the middleware). Close is idempotent.
func (m *Monitor) Close() error {
	var err error
	m.once.Do(func() {
		m.closed.Store(true)
		close(m.done)
		<-m.exited
		err = m.tel.close()
	})
	return err
}

// Middleware returns the observing middleware: it passes each request on
// and, when the answer succeeds, copies the watched features of the
// request and response into the monitor's queue. It adds no wait to a
// request: when the queue is full the observation is dropped and counted.
// Many middleware instances (one per model) may share a Monitor.
func (m *Monitor) Middleware() serving.Middleware {
	return observe.Middleware("drift: predict", m.observe)
}

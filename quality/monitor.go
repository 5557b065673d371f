package quality

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/servekit/servekit/internal/observe"
	"github.com/servekit/servekit/serving"
)

// errClosed is returned by the monitor's methods after Close.
var errClosed = serving.Errorf(serving.Unavailable, "quality: monitor closed")

// Monitor tracks model versions' performance: its Middleware remembers
// each answered prediction by request id, labels join them later (Label,
// LabelsHandler, ReadLabels), and a worker goroutine it owns cuts windows,
// estimates performance without labels (CBPE, with a Reference),
// computes it from the labels, runs the change detectors, raises alerts
// and exports metrics. All methods are safe for concurrent use; Close
// stops the worker.
type Monitor struct {
	cfg  *config
	seed maphash.Seed

	buf    buffer
	wake   chan struct{}
	ctrl   chan func()
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
	closed atomic.Bool

	mu    sync.Mutex                       // serialises writers of plans
	plans atomic.Pointer[map[string]*plan] // read on the request path

	w   *worker // owned by the worker goroutine
	pub published
	n   counters
	tel *telemetry
}

type mvKey = observe.Key

// counters are the monitor's tallies (Stats).
type counters struct {
	requests, predictions, dropped, unwatched, rejected, panics atomic.Int64
	labels, unmatched, evicted, expired                         atomic.Int64
}

// Stats are a monitor's counters since it started.
type Stats struct {
	// Requests and Predictions (rows) observed; Dropped requests found the
	// queue full and were not observed. Unwatched requests were for a
	// model without a task; Rejected ones lacked the task's output or
	// column.
	Requests    int64 `json:"requests"`
	Predictions int64 `json:"predictions"`
	Dropped     int64 `json:"dropped"`
	Unwatched   int64 `json:"unwatched"`
	Rejected    int64 `json:"rejected"`
	// Labels that reached a remembered prediction (each counted once
	// however many versions answered its id); Unmatched ones found none:
	// an unknown id, or one forgotten.
	Labels    int64 `json:"labels"`
	Unmatched int64 `json:"unmatched"`
	// Evicted predictions were forgotten to keep within the memory cap,
	// Expired ones at their maximum age.
	Evicted int64 `json:"evicted"`
	Expired int64 `json:"expired"`
	// Windows closed and Alerts raised, over all model versions.
	Windows int64 `json:"windows"`
	Alerts  int64 `json:"alerts"`
	// Panics recovered in alert functions or observation.
	Panics int64 `json:"panics"`
}

// plan is what the request path needs about one model; immutable,
// replaced as a whole.
type plan struct {
	model string
	task  Task
	refs  map[string]*Reference // by version; "" for the model's default
}

func (p *plan) reference(version string) *Reference {
	if r, ok := p.refs[version]; ok {
		return r
	}
	return p.refs[""]
}

// buffer hands observed predictions to the worker in batches: the request
// path appends under a short lock, the worker swaps the whole batch out,
// so neither a channel operation nor a wake-up is paid per request.
type buffer struct {
	mu       sync.Mutex
	obs      []obs     // guarded by mu
	scores   []float64 // guarded by mu: each obs's scores, in order
	requests int64     // guarded by mu: requests in obs
	limit    int
}

// obs is one observed prediction on its way to the worker.
type obs struct {
	plan    *plan
	version string
	// at is when it was answered, Unix ns; 0 for live traffic, which the
	// worker stamps when it takes the batch in (milliseconds later at
	// most, unless the worker is behind): one clock read a batch rather
	// than one a request.
	at  int64
	key uint64 // the id's hash, 0 without one
}

// NewMonitor starts a monitor and its worker.
func NewMonitor(opts ...Option) (*Monitor, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		cfg: cfg, seed: maphash.MakeSeed(),
		wake: make(chan struct{}, 1), ctrl: make(chan func()),
		done: make(chan struct{}), exited: make(chan struct{}),
	}
	m.buf.limit = cfg.queue
	empty := map[string]*plan{}
	m.plans.Store(&empty)
	m.pub.init(cfg.history)
	for model, t := range cfg.tasks {
		if err := m.setTask(model, t); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.refs {
		if err := m.AddReference(r); err != nil {
			return nil, err
		}
	}
	if m.tel, err = newTelemetry(m, cfg.meters); err != nil {
		return nil, fmt.Errorf("quality: metrics: %w", err)
	}
	m.w = newWorker(m)
	go m.w.run()
	return m, nil
}

func (m *Monitor) setTask(model string, t Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.plans.Load()
	if p, ok := old[model]; ok {
		if !sameTask(p.task, t) {
			return invalid("model %q: task %+v, but it is watched as %+v", model, t, p.task)
		}
		return nil
	}
	next := maps.Clone(old)
	next[model] = &plan{model: model, task: t, refs: map[string]*Reference{}}
	m.plans.Store(&next)
	return nil
}

func sameTask(a, b Task) bool {
	return a.Kind == b.Kind && a.Output == b.Output && a.Column == b.Column && a.Threshold == b.Threshold &&
		a.NumClasses == b.NumClasses && fmt.Sprint(a.Classes) == fmt.Sprint(b.Classes)
}

// AddReference judges the reference's model version against it (every
// version of the model without a reference of its own, if the
// reference's version is empty), replacing any it had. The model is
// watched with the reference's task, which must match the task other
// versions of the model have.
func (m *Monitor) AddReference(r *Reference) error {
	if r == nil {
		return invalid("nil reference")
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if err := m.setTask(r.Model, r.Task); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.plans.Load()
	p := *old[r.Model]
	p.refs = maps.Clone(p.refs)
	p.refs[r.Version] = r
	next := maps.Clone(old)
	next[r.Model] = &p
	m.plans.Store(&next)
	return nil
}

func (m *Monitor) lookup(model string) *plan { return (*m.plans.Load())[model] }

// Reference returns the reference a model version is judged against.
func (m *Monitor) Reference(model, version string) (*Reference, bool) {
	if p := m.lookup(model); p != nil {
		r := p.reference(version)
		return r, r != nil
	}
	return nil, false
}

// hash is an id's key in the ring's index; 0 means no id.
func (m *Monitor) hash(id string) uint64 {
	if h := maphash.String(m.seed, id); h != 0 {
		return h
	}
	return 1
}

// rowHash is the key of row r's id in a request of several rows:
// "<request id>/<row>".
func (m *Monitor) rowHash(id string, r int) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(id)
	h.WriteByte('/')
	var buf [20]byte
	h.Write(strconv.AppendInt(buf[:0], int64(r), 10))
	if s := h.Sum64(); s != 0 {
		return s
	}
	return 1
}

// observe copies a request's predictions to the worker, or counts why
// not. It never blocks and never fails the request.
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
	pl := m.lookup(model)
	if pl == nil {
		m.n.unwatched.Add(1)
		return
	}
	t, ok := resp.Output(pl.task.Output)
	if !ok {
		m.n.rejected.Add(1)
		return
	}
	rows, width := view(t)
	w := pl.task.width()
	if rows < 0 || width < 0 || t.Len() != rows*width || rows == 0 ||
		pl.task.Kind == Multiclass && width != w || pl.task.Kind != Multiclass && pl.task.Column >= width {
		m.n.rejected.Add(1)
		return
	}
	// One row's id is hashed before the lock; a request of several rows
	// has its rows' ids hashed under it (rowHash, ~20 ns a row).
	var key uint64
	if req.ID != "" && rows == 1 {
		key = m.hash(req.ID)
	}
	col := pl.task.Column
	if pl.task.Kind == Multiclass {
		col = 0 // the whole row, in order
	}
	b := &m.buf
	b.mu.Lock()
	if len(b.obs)+rows > b.limit {
		b.mu.Unlock()
		m.n.dropped.Add(1)
		return
	}
	first := len(b.obs) == 0
	for r := range rows {
		k := key
		if req.ID != "" && rows > 1 {
			k = m.rowHash(req.ID, r)
		}
		b.obs = append(b.obs, obs{plan: pl, version: version, key: k})
	}
	b.scores = appendScores(b.scores, t, rows, width, col, w)
	b.requests++
	b.mu.Unlock()
	if first {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// appendScores appends each row's w values (from column col of rows of
// width values) to dst as float64; a value that is not a number is NaN.
func appendScores(dst []float64, t serving.Tensor, rows, width, col, w int) []float64 {
	switch d := t.Data().(type) {
	case []float32:
		if w == 1 {
			for r := range rows {
				dst = append(dst, float64(d[r*width+col]))
			}
			return dst
		}
		for _, v := range d[:rows*w] {
			dst = append(dst, float64(v))
		}
		return dst
	case []float64:
		if w == 1 {
			for r := range rows {
				dst = append(dst, d[r*width+col])
			}
			return dst
		}
		return append(dst, d[:rows*w]...)
	}
	for i := range rows * w {
		v, ok := t.Float64At(i/w*width + col + i%w)
		if !ok {
			v = math.NaN()
		}
		dst = append(dst, v)
	}
	return dst
}

// view reads a tensor as rows × width: dimension 0 is the row, the others
// are flattened; a scalar is one row of one value.
func view(t serving.Tensor) (rows, width int) {
	if len(t.Shape) == 0 {
		return 1, 1
	}
	width = 1
	for _, d := range t.Shape[1:] {
		width *= int(d)
	}
	return int(t.Shape[0]), width
}

// Flush waits until the worker has taken in every prediction observed
// before the call and recomputed the windows that got labels, so Status,
// Results and Report reflect them. It closes no window early.
func (m *Monitor) Flush(ctx context.Context) error {
	return m.do(ctx, func() { m.w.refreshAll(m.cfg.clock.Now(), true) })
}

// do runs f on the worker goroutine after it has taken in what is queued.
func (m *Monitor) do(ctx context.Context, f func()) error {
	if m.closed.Load() {
		return errClosed
	}
	return observe.Do(ctx, m.ctrl, m.done, errClosed, "quality: waiting for the worker", func() {
		m.w.drain()
		f()
	})
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() Stats {
	windows, alerts := m.pub.totals()
	return Stats{
		Requests: m.n.requests.Load(), Predictions: m.n.predictions.Load(), Dropped: m.n.dropped.Load(),
		Unwatched: m.n.unwatched.Load(), Rejected: m.n.rejected.Load(),
		Labels: m.n.labels.Load(), Unmatched: m.n.unmatched.Load(),
		Evicted: m.n.evicted.Load(), Expired: m.n.expired.Load(),
		Windows: windows, Alerts: alerts, Panics: m.n.panics.Load(),
	}
}

// Close stops the worker, dropping what is still queued, and unregisters
// the metrics. Requests still pass through the middleware afterwards, not
// observed. Close is idempotent.
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
// and, when the answer succeeds, copies its predictions and the request
// id into the monitor's queue. It adds no wait: when the queue is full
// the observation is dropped and counted. Place it where the answer's
// version is known (below a rollout router, in each version's chain, it
// also sees a shadow's mirrored requests under the same id, so two
// versions can be compared on the same requests).
func (m *Monitor) Middleware() serving.Middleware {
	return observe.Middleware("quality: predict", m.observe)
}

package predlog

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// ScopeName is the instrumentation scope of the logger's metrics.
const ScopeName = "github.com/servekit/servekit/predlog"

// Record is one logged prediction: copies of the request's inputs and of
// the answer's outputs, or the error.
type Record struct {
	Time time.Time
	// ID is the request's ID; a random one when it had none, so that the
	// request and response events of a record share it.
	ID string
	// Model and Version answered (Response.Model/Version), or were asked
	// for when the call failed.
	Model, Version string
	Inputs         []serving.Tensor
	Outputs        []serving.Tensor // nil when the call failed
	// Err is the failure's message and Code its code; empty and OK on
	// success.
	Err  string
	Code serving.Code
}

// Sink receives records from the logger's goroutine, one call at a time.
// Write may be called with no records, so that a sink can do timed work
// (rotate a file by age); ctx bounds the call. Close flushes and releases
// what the sink holds; the Logger that owns the sink calls it.
type Sink interface {
	Write(ctx context.Context, recs []Record) error
	Close() error
}

// Logger is the logging middleware around one Predictor. It is safe for
// concurrent use; Close flushes what is queued.
type Logger struct {
	next    serving.Predictor
	sink    Sink
	cfg     config
	queue   chan Record
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closed  atomic.Bool
	closeMu sync.Mutex
	err     error // guarded by closeMu: the sink's Close error

	logged, dropped, failed atomic.Int64
	inst                    instruments
}

var (
	_ serving.Predictor = (*Logger)(nil)
	_ serving.Wrapper   = (*Logger)(nil)
)

// Stats are the logger's counters.
type Stats struct {
	// Logged records reached the sink; Dropped were not queued because the
	// queue was full (or the logger closing); Failed were given to a sink
	// that returned an error.
	Logged, Dropped, Failed int64
}

// New returns a Logger in front of next that samples its calls into sink.
// The Logger owns sink and closes it on Close.
func New(next serving.Predictor, sink Sink, opts ...Option) *Logger {
	c := newConfig(opts)
	l := &Logger{next: next, sink: sink, cfg: c, queue: make(chan Record, c.queue), quit: make(chan struct{})}
	l.inst = newInstruments(c.meters, l)
	l.wg.Go(l.loop)
	return l
}

// Middleware returns New as a serving.Middleware. Each model it wraps
// needs its own sink: a Logger closes the sink it owns.
func Middleware(sink Sink, opts ...Option) serving.Middleware {
	return func(next serving.Predictor) serving.Predictor { return New(next, sink, opts...) }
}

// Predict asks next and, when the call is sampled, queues a copy of the
// request and the answer for the sink without waiting: a full queue drops
// the record and counts it.
func (l *Logger) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if l.closed.Load() {
		return nil, serving.ErrClosed
	}
	resp, err := l.next.Predict(ctx, req)
	if l.sampled(err) {
		l.enqueue(record(req, resp, err))
	}
	return resp, err
}

func (l *Logger) sampled(err error) bool {
	if err != nil {
		return l.cfg.errors || l.cfg.rate >= 1 || (l.cfg.rate > 0 && rand.Float64() < l.cfg.rate)
	}
	return l.cfg.rate >= 1 || (l.cfg.rate > 0 && rand.Float64() < l.cfg.rate)
}

func (l *Logger) enqueue(r Record) {
	if !l.closed.Load() {
		select {
		case l.queue <- r:
			return
		default:
		}
	}
	l.dropped.Add(1)
	l.inst.dropped(context.Background())
}

// record copies what it keeps: the caller may reuse the request's data
// once Predict returns, and a response may be shared.
func record(req *serving.Request, resp *serving.Response, err error) Record {
	r := Record{Time: time.Now().UTC(), ID: req.ID, Model: req.Model, Version: req.Version}
	if r.ID == "" {
		r.ID = newID()
	}
	r.Inputs = make([]serving.Tensor, len(req.Inputs))
	for i, t := range req.Inputs {
		r.Inputs[i] = t.Clone()
	}
	if err != nil {
		r.Err, r.Code = err.Error(), serving.CodeOf(err)
		return r
	}
	if resp == nil { // a broken predictor; logged with no outputs rather than a panic
		return r
	}
	if resp.Model != "" {
		r.Model = resp.Model
	}
	r.Version = resp.Version
	r.Outputs = make([]serving.Tensor, len(resp.Outputs))
	for i, t := range resp.Outputs {
		r.Outputs[i] = t.Clone()
	}
	return r
}

func newID() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 32)
	for i := range b {
		b[i] = hex[rand.IntN(16)]
	}
	return string(b)
}

// loop hands queued records to the sink in batches until Close, then
// drains the queue.
func (l *Logger) loop() {
	tick := time.NewTicker(l.cfg.tick)
	defer tick.Stop()
	batch := make([]Record, 0, l.cfg.maxBatch)
	for {
		select {
		case r := <-l.queue:
			batch = append(batch[:0], r)
			batch = l.fill(batch)
			l.write(batch)
		case <-tick.C:
			l.write(nil)
		case <-l.quit:
			for {
				batch = l.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				l.write(batch)
			}
		}
	}
}

// fill adds what is queued, up to the batch bound, without waiting.
func (l *Logger) fill(batch []Record) []Record {
	for len(batch) < l.cfg.maxBatch {
		select {
		case r := <-l.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// write gives a batch to the sink under the write timeout; a detached
// context, because no request waits for it.
func (l *Logger) write(batch []Record) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.timeout)
	defer cancel()
	err := l.sink.Write(ctx, batch)
	if len(batch) == 0 {
		return
	}
	if err != nil {
		l.failed.Add(int64(len(batch)))
		l.inst.record(ctx, "failed", len(batch))
		if l.cfg.onError != nil {
			l.cfg.onError(err)
		}
		return
	}
	l.logged.Add(int64(len(batch)))
	l.inst.record(ctx, "logged", len(batch))
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	return Stats{Logged: l.logged.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Unwrap implements serving.Wrapper.
func (l *Logger) Unwrap() serving.Predictor { return l.next }

// Close stops logging, writes what is queued, and closes the sink; Predict
// then returns serving.ErrClosed. It does not close the wrapped Predictor
// (serving.Close walks the chain). It is idempotent and returns the
// sink's Close error.
func (l *Logger) Close() error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
		l.wg.Wait()
		l.inst.stop()
		err := l.sink.Close()
		l.closeMu.Lock()
		l.err = err
		l.closeMu.Unlock()
	})
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	return l.err
}

type instruments struct {
	records metric.Int64Counter
	dropOpt metric.AddOption
	reg     metric.Registration
	attrs   []attribute.KeyValue
}

func newInstruments(mp metric.MeterProvider, l *Logger) instruments {
	m := mp.Meter(ScopeName)
	var in instruments
	in.records, _ = m.Int64Counter("servekit.predlog.records", metric.WithUnit("{record}"),
		metric.WithDescription("Sampled predictions by outcome: logged, failed (the sink refused them) or dropped (queue full)."))
	in.dropOpt = metric.WithAttributes(attribute.String("outcome", "dropped"))
	depth, err := m.Int64ObservableUpDownCounter("servekit.predlog.queue.depth", metric.WithUnit("{record}"),
		metric.WithDescription("Records waiting for the sink."))
	if err == nil {
		in.reg, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(depth, int64(len(l.queue)))
			return nil
		}, depth)
	}
	return in
}

func (in instruments) dropped(ctx context.Context) {
	if in.records != nil {
		in.records.Add(ctx, 1, in.dropOpt)
	}
}

func (in instruments) record(ctx context.Context, outcome string, n int) {
	if in.records != nil {
		in.records.Add(ctx, int64(n), metric.WithAttributes(attribute.String("outcome", outcome)))
	}
}

func (in instruments) stop() {
	if in.reg != nil {
		_ = in.reg.Unregister()
	}
}

var errClosedSink = errors.New("predlog: sink closed")

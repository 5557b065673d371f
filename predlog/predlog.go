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

	"github.com/servekit/servekit/internal/broken"
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

// Sink receives records from the goroutines of the Loggers that write to
// it: one Logger calls it one call at a time, and several Loggers may share
// one sink (Middleware over several models), so a Sink is safe for
// concurrent use. Write may be called with no records, so that a sink can
// do timed work (rotate a file by age); ctx bounds the call; the sink may
// keep the Records but not the slice, which the logger reuses. Close
// flushes and releases what the sink holds; no Logger calls it: whoever
// made the sink closes it once the Loggers writing to it are closed.
type Sink interface {
	Write(ctx context.Context, recs []Record) error
	Close() error
}

// Flusher is a Sink that can make what it was given durable (FileSink:
// fsync, or for Parquet a rotation). Logger.Flush calls it.
type Flusher interface {
	Flush(ctx context.Context) error
}

// queued is a record on its way to the sink, with the bytes it was
// charged against the queue's bound.
type queued struct {
	rec  Record
	size int64
}

// Logger is the logging middleware around one Predictor. It is safe for
// concurrent use; Close flushes what is queued.
type Logger struct {
	next    serving.Predictor
	sink    Sink
	cfg     config
	queue   chan queued
	bytes   atomic.Int64 // charged by queued records until their Write returns
	flushes chan chan error
	quit    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closed  atomic.Bool
	closeMu sync.Mutex
	err     error // guarded by closeMu: Close's error
	final   error // written by loop before it returns (read after wg.Wait): the last drain's

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
// The Logger owns next (Close closes it) but not sink, which may serve
// other Loggers: whoever made it closes it, after them. It fails with an
// InvalidArgument error for a nil sink or an invalid option. It starts one
// goroutine, stopped by Close.
func New(next serving.Predictor, sink Sink, opts ...Option) (*Logger, error) {
	c := newConfig(opts)
	c.require(sink != nil, "nil sink")
	if err := errors.Join(c.errs...); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "predlog: %w", err)
	}
	l := &Logger{next: next, sink: sink, cfg: c, queue: make(chan queued, c.queue), flushes: make(chan chan error), quit: make(chan struct{})}
	l.inst = newInstruments(c.meters, l)
	l.wg.Go(l.loop)
	return l, nil
}

// Middleware returns New as a serving.Middleware: every model it wraps
// logs into sink, which is why a Sink is safe for concurrent use and no
// Logger closes it. Invalid options give a Predictor whose every call
// fails with New's error, so the mistake shows on the first request.
func Middleware(sink Sink, opts ...Option) serving.Middleware {
	return func(next serving.Predictor) serving.Predictor {
		l, err := New(next, sink, opts...)
		if err != nil {
			return broken.New(next, err)
		}
		return l
	}
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
		l.enqueue(req, resp, err)
	}
	return resp, err
}

func (l *Logger) sampled(err error) bool {
	if err != nil {
		return l.cfg.errors || l.cfg.rate >= 1 || (l.cfg.rate > 0 && rand.Float64() < l.cfg.rate)
	}
	return l.cfg.rate >= 1 || (l.cfg.rate > 0 && rand.Float64() < l.cfg.rate)
}

// enqueue charges the record's size against the byte bound before it
// copies anything, so a record that does not fit costs no copy, then
// offers the copy to the queue without waiting.
func (l *Logger) enqueue(req *serving.Request, resp *serving.Response, err error) {
	size := recordBytes(req, resp, err)
	if !l.closed.Load() && l.bytes.Add(size) <= l.cfg.queueBytes {
		select {
		case l.queue <- queued{record(req, resp, err), size}:
			return
		default:
		}
	}
	l.bytes.Add(-size)
	l.dropped.Add(1)
	l.inst.dropped(context.Background())
}

// recordBytes is what a record holds in memory: the tensors' data (BYTES
// elements with their slice headers), names and shapes, and the strings.
func recordBytes(req *serving.Request, resp *serving.Response, err error) int64 {
	n := int64(256+len(req.ID)+len(req.Model)+len(req.Version)) + tensorsBytes(req.Inputs)
	if resp != nil && err == nil {
		n += int64(len(resp.Model)+len(resp.Version)) + tensorsBytes(resp.Outputs)
	}
	if err != nil {
		n += int64(len(err.Error()))
	}
	return n
}

func tensorsBytes(ts []serving.Tensor) int64 {
	var n int64
	for _, t := range ts {
		n += 96 + int64(len(t.Name)+8*len(t.Shape)+t.RawSize())
		if t.DataType == serving.Bytes {
			n += 20 * int64(t.Len()) // a slice header in place of RawSize's length prefix
		}
	}
	return n
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
// drains the queue and flushes the sink: the sink outlives the Logger, so
// what the Logger wrote is made durable now rather than at the sink's
// next rotation.
func (l *Logger) loop() {
	tick := time.NewTicker(l.cfg.tick)
	defer tick.Stop()
	batch := make([]queued, 0, l.cfg.maxBatch)
	recs := make([]Record, 0, l.cfg.maxBatch)
	for {
		select {
		case q := <-l.queue:
			batch = l.fill(append(batch[:0], q))
			l.write(batch, recs)
		case <-tick.C:
			l.write(nil, nil)
		case reply := <-l.flushes:
			reply <- l.drain(batch, recs, true)
		case <-l.quit:
			l.final = l.drain(batch, recs, true)
			return
		}
	}
}

// drain writes every record queued, then (for a flush) has the sink make
// them durable. It returns the errors of those writes.
func (l *Logger) drain(batch []queued, recs []Record, flush bool) error {
	var errs []error
	for {
		batch = l.fill(batch[:0])
		if len(batch) == 0 {
			break
		}
		errs = append(errs, l.write(batch, recs))
	}
	if f, ok := l.sink.(Flusher); ok && flush {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.timeout)
		errs = append(errs, f.Flush(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// fill adds what is queued, up to the batch bound, without waiting.
func (l *Logger) fill(batch []queued) []queued {
	for len(batch) < l.cfg.maxBatch {
		select {
		case q := <-l.queue:
			batch = append(batch, q)
		default:
			return batch
		}
	}
	return batch
}

// write gives a batch to the sink under the write timeout; a detached
// context, because no request waits for it. The batch's bytes are
// released once the sink has them.
func (l *Logger) write(batch []queued, recs []Record) error {
	recs = recs[:0]
	var size int64
	for _, q := range batch {
		recs = append(recs, q.rec)
		size += q.size
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.timeout)
	defer cancel()
	err := l.sink.Write(ctx, recs)
	clear(recs) // the sink is done with them: let the collector have them
	clear(batch)
	l.bytes.Add(-size)
	if len(batch) == 0 {
		return err
	}
	if err != nil {
		l.failed.Add(int64(len(batch)))
		l.inst.record(ctx, "failed", len(batch))
		if l.cfg.onError != nil {
			l.cfg.onError(err)
		}
		return err
	}
	l.logged.Add(int64(len(batch)))
	l.inst.record(ctx, "logged", len(batch))
	return nil
}

// Flush writes every record queued before it was called and has the sink
// make them durable (a Flusher's Flush: a FileSink fsyncs, or rotates its
// Parquet files); when it returns nil, those records survive a crash of
// the process or the machine. It waits for the logger's goroutine, until
// ctx ends. Records dropped (Stats.Dropped) were never queued, so no Flush
// covers them. After Close it returns Close's error: Close flushed.
func (l *Logger) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case l.flushes <- reply:
	case <-l.quit:
		return l.Close()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	return Stats{Logged: l.logged.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Unwrap implements serving.Wrapper.
func (l *Logger) Unwrap() serving.Predictor { return l.next }

// Close stops logging, writes what is queued to the sink and has it make
// that durable (a Flusher's Flush), then closes the wrapped Predictor,
// which the Logger owns; Predict then returns serving.ErrClosed. It leaves
// the sink open (see New). It is idempotent and returns the errors of the
// last writes and of closing the wrapped Predictor.
func (l *Logger) Close() error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
		l.wg.Wait()
		l.inst.stop()
		err := errors.Join(l.final, serving.Close(l.next))
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

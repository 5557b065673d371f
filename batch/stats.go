package batch

import (
	"context"
	"math/bits"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// ScopeName is the instrumentation scope of the batcher's metrics and spans.
const ScopeName = "github.com/servekit/servekit/batch"

// Stats is a snapshot of a Batcher's counters, as plain values.
type Stats struct {
	Batches  int64 // batches run
	Requests int64 // requests (or chunks of oversize requests) answered in batches
	Rows     int64 // rows run
	// Direct counts requests run in their caller's goroutine, without the
	// queue (adaptive mode); they count in Batches too. Alone counts those
	// of them that ran beside other runs because joining did not pay (the
	// cost model); the others found the model idle.
	Direct, Alone int64
	// RowsPerBatch counts batches by size: bucket i holds batches of
	// (2^(i-1), 2^i] rows (bucket 0: 1 row); the last bucket holds the rest.
	RowsPerBatch [16]int64
	QueueTime    time.Duration // summed over requests, from queued to dispatched
	RunTime      time.Duration // summed over batches, but for the Untimed ones
	// Untimed counts the direct runs that were not timed: a lone request
	// of one row at an idle batcher, and one of a caller that runs alone
	// because joining did not pay, run without a clock read, but for one
	// in 64 (see "Performance" in the package doc).
	Untimed    int64
	QueuedRows int64 // rows waiting now
	QueuedReqs int   // requests waiting now
	InFlight   int   // batches running now
	// Isolations counts joined runs that failed, or were ended at their
	// limit, and whose members still waiting were run again in halves.
	Isolations int64
	// Ended counts runs ended at their time limit (their ctx cancelled and
	// their run slot given back).
	Ended    int64
	Rejected Rejections
	// Adaptive mode's measures (see the package doc): rows answered per
	// second while joining and while running alone (0 until measured), and
	// whether it joins now; wall time per row of a run of one request and
	// of a joined run (join to the last member's hand-out) that had the
	// model to itself (0 until measured).
	JoiningRate, AloneRate      float64
	Joining                     bool
	RowCostAlone, RowCostJoined time.Duration
}

// Rejections counts requests that never ran, by reason.
type Rejections struct {
	Overloaded int64 // the queue bound was reached
	Canceled   int64 // the caller cancelled while queued
	Deadline   int64 // the caller's deadline passed while queued
	Closed     int64 // refused or failed because the Batcher closed
}

// MeanRows is the mean batch size in rows, 0 before any batch.
func (s Stats) MeanRows() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Rows) / float64(s.Batches)
}

// MeanRequests is the mean number of requests per batch.
func (s Stats) MeanRequests() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Requests) / float64(s.Batches)
}

// Stats returns a snapshot of the counters.
func (b *Batcher) Stats() Stats {
	b.mu.Lock()
	defer b.unlock()
	s := b.stats
	// Fast runs (fast.go) are counted here rather than as they run: each
	// is a direct run of one request of one row, not timed.
	// So are loose runs (loose.go), which are runs alone too.
	loose := b.looseRunsLocked()
	fast := b.fastRunsLocked() + loose
	s.Batches += fast
	s.Requests += fast
	s.Rows += fast
	s.Direct += fast
	s.Alone += loose
	s.RowsPerBatch[0] += fast
	s.Untimed = fast
	s.RowCostAlone, s.RowCostJoined = time.Duration(b.cost.alone), time.Duration(b.cost.joined)
	s.Joining = b.cost.joins
	s.AloneRate, s.JoiningRate = b.cost.rate[0], b.cost.rate[1]
	s.QueuedRows = b.queued
	s.InFlight = b.inflight
	if b.fast.Load()&fastHeld != 0 {
		s.InFlight++
	}
	for _, q := range b.queues {
		s.QueuedReqs += q.count()
	}
	return s
}

func bucket(rows int64) int {
	if rows <= 1 {
		return 0
	}
	return min(bits.Len64(uint64(rows-1)), 15)
}

type reason uint8

const (
	reasonOverloaded reason = iota
	reasonCanceled
	reasonDeadline
	reasonClosed
	numReasons
)

var reasonNames = [numReasons]string{"overloaded", "canceled", "deadline", "closed"}

func (r *Rejections) add(why reason) {
	switch why {
	case reasonOverloaded:
		r.Overloaded++
	case reasonCanceled:
		r.Canceled++
	case reasonDeadline:
		r.Deadline++
	case reasonClosed:
		r.Closed++
	}
}

// telemetry holds the instruments and pre-built attribute sets, so that
// recording costs no allocation on the hot path.
type telemetry struct {
	tracer    trace.Tracer
	spanAttrs trace.SpanStartEventOption

	queueDur, runDur metric.Float64Histogram
	fastRecorded     int64 // fast runs recorded in the histograms (observe's callback)
	sizeI, reqsI     metric.Int64Histogram
	depthO           metric.Int64ObservableUpDownCounter
	depthReg         metric.Registration // nil until observe
	state            func() (depth, fast int64)
	flushMu          sync.Mutex
	rejectedC        metric.Int64Counter

	attrs    metric.MeasurementOption
	rec      []metric.RecordOption // {attrs}: a slice passed on with ... does not allocate
	rejAttrs [numReasons][]metric.AddOption
}

func newTelemetry(cfg config, md serving.Metadata) (*telemetry, error) {
	m := cfg.meters.Meter(ScopeName)
	base := []attribute.KeyValue{attribute.String("model", md.Name), attribute.String("version", md.Version)}
	t := &telemetry{
		tracer:    cfg.tracers.Tracer(ScopeName),
		spanAttrs: trace.WithAttributes(base...),
		attrs:     metric.WithAttributeSet(attribute.NewSet(base...)),
	}
	t.rec = []metric.RecordOption{t.attrs}
	for r := range numReasons {
		t.rejAttrs[r] = []metric.AddOption{
			metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], attribute.String("reason", reasonNames[r]))...))}
	}
	var err error
	t.queueDur, err = m.Float64Histogram("servekit.batch.queue.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a request waited in the batch queue."))
	if err == nil {
		t.runDur, err = m.Float64Histogram("servekit.batch.run.duration", metric.WithUnit("s"),
			metric.WithDescription("Time one batch took to run."))
	}
	if err == nil {
		t.sizeI, err = m.Int64Histogram("servekit.batch.size", metric.WithUnit("{row}"),
			metric.WithDescription("Rows per batch."),
			metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
	}
	if err == nil {
		t.reqsI, err = m.Int64Histogram("servekit.batch.requests", metric.WithUnit("{request}"),
			metric.WithDescription("Requests per batch."),
			metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
	}
	if err == nil {
		// Observed at collection rather than counted per request: an
		// Add per enqueue and per batch cost about 0.25 µs each.
		t.depthO, err = m.Int64ObservableUpDownCounter("servekit.batch.queue.depth", metric.WithUnit("{row}"),
			metric.WithDescription("Rows waiting in the batch queue."))
	}
	if err == nil {
		t.rejectedC, err = m.Int64Counter("servekit.batch.rejected", metric.WithUnit("{request}"),
			metric.WithDescription("Requests that never ran, by reason."))
	}
	if err != nil {
		return nil, serving.Errorf(serving.Internal, "batch: metrics: %w", err)
	}
	// Each reason's series starts at 0, so that dashboards and alert rules
	// on servekit.batch.rejected read "none" rather than "no data" until the
	// first rejection.
	for r := range numReasons {
		t.rejectedC.Add(context.Background(), 0, t.rejAttrs[r]...)
	}
	return t, nil
}

func (t *telemetry) queued(d time.Duration) {
	t.queueDur.Record(context.Background(), d.Seconds(), t.rec...)
}

func (t *telemetry) ran(d time.Duration, rows int64, reqs int) {
	ctx := context.Background()
	t.runDur.Record(ctx, d.Seconds(), t.rec...)
	t.sizeI.Record(ctx, rows, t.rec...)
	t.reqsI.Record(ctx, int64(reqs), t.rec...)
}

// observe registers the callback that reports the queue depth, and
// records the fast runs (fast.go) since its last call in the histograms;
// unobserve (idempotent, from the scheduler as it exits) records the last
// of them and removes the callback, so the meter does not keep a closed
// batcher alive. state returns the rows queued and the fast runs so far.
//
// A fast run is recorded as what it is, a batch of one request of one row
// that did not queue, but at collection rather than as it runs, so that a
// lone request pays nothing for metrics: the SDK runs callbacks before it
// reads the histograms, so a collection sees every fast run before it.
// Its run time is not known: servekit.batch.run.duration leaves it out.
func (t *telemetry) observe(m metric.MeterProvider, state func() (depth, fast int64)) error {
	t.state = state
	reg, err := m.Meter(ScopeName).RegisterCallback(func(_ context.Context, o metric.Observer) error {
		depth := t.flush()
		o.ObserveInt64(t.depthO, depth, t.attrs)
		return nil
	}, t.depthO)
	if err != nil {
		return serving.Errorf(serving.Internal, "batch: metrics: %w", err)
	}
	t.depthReg = reg
	return nil
}

func (t *telemetry) unobserve() {
	if t.depthReg != nil {
		_ = t.depthReg.Unregister()
	}
	t.flush()
}

// flush records the fast runs not yet recorded, and returns the queue
// depth. Callbacks and unobserve may run at once (a collection as the
// batcher closes): flushMu keeps a run from being recorded twice.
func (t *telemetry) flush() (depth int64) {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	depth, fast := t.state()
	n := fast - t.fastRecorded
	t.fastRecorded = fast
	ctx := context.Background()
	// Enabled: a meter that drops what it is given (no SDK) is not handed
	// a record per run.
	if t.queueDur.Enabled(ctx) {
		for range n {
			t.queueDur.Record(ctx, 0, t.rec...)
		}
	}
	if t.sizeI.Enabled(ctx) {
		for range n {
			t.sizeI.Record(ctx, 1, t.rec...)
		}
	}
	if t.reqsI.Enabled(ctx) {
		for range n {
			t.reqsI.Record(ctx, 1, t.rec...)
		}
	}
	return depth
}

func (t *telemetry) rejected(ctx context.Context, why reason) {
	t.rejectedC.Add(ctx, 1, t.rejAttrs[why]...)
}

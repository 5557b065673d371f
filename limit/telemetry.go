package limit

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// ScopeName is the instrumentation scope of the limiter's metrics.
const ScopeName = "github.com/servekit/servekit/limit"

// Metric names.
const (
	MetricInFlight      = "servekit.limit.inflight"
	MetricQueueDepth    = "servekit.limit.queue.depth"
	MetricQueueDuration = "servekit.limit.queue.duration"
	MetricRejected      = "servekit.limit.rejected"
)

type reason uint8

const (
	reasonFull reason = iota
	reasonWait
	reasonDeadline
	reasonCanceled
	reasonClosed
	numReasons
	reasonNone = numReasons
)

var reasonNames = [numReasons]string{"queue_full", "max_wait", "deadline", "canceled", "closed"}

// telemetry holds the instruments and attribute sets built once, so that
// recording allocates nothing.
type telemetry struct {
	queueDur metric.Float64Histogram
	rejected metric.Int64Counter
	rec      []metric.RecordOption
	rejAttrs [numReasons][]metric.AddOption
	reg      metric.Registration
}

func newTelemetry(mp metric.MeterProvider, md serving.Metadata, depths func() (int64, int64)) (*telemetry, error) {
	m := mp.Meter(ScopeName)
	base := []attribute.KeyValue{attribute.String("model", md.Name), attribute.String("version", md.Version)}
	attrs := metric.WithAttributeSet(attribute.NewSet(base...))
	t := &telemetry{rec: []metric.RecordOption{attrs}}
	for r := range numReasons {
		t.rejAttrs[r] = []metric.AddOption{metric.WithAttributeSet(
			attribute.NewSet(append(base[:2:2], attribute.String("reason", reasonNames[r]))...))}
	}
	var inflight, depth metric.Int64ObservableUpDownCounter
	var err error
	t.queueDur, err = m.Float64Histogram(MetricQueueDuration, metric.WithUnit("s"),
		metric.WithDescription("Time a request waited for a slot, for requests that waited."))
	if err == nil {
		t.rejected, err = m.Int64Counter(MetricRejected, metric.WithUnit("{request}"),
			metric.WithDescription("Requests refused a slot, by reason (queue_full, max_wait, deadline, canceled, closed)."))
	}
	if err == nil {
		inflight, err = m.Int64ObservableUpDownCounter(MetricInFlight, metric.WithUnit("{request}"),
			metric.WithDescription("Requests holding a slot now."))
	}
	if err == nil {
		depth, err = m.Int64ObservableUpDownCounter(MetricQueueDepth, metric.WithUnit("{request}"),
			metric.WithDescription("Requests waiting for a slot now."))
	}
	if err == nil {
		// Observed at collection: the limiter keeps the counts anyway.
		t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			in, q := depths()
			o.ObserveInt64(inflight, in, attrs)
			o.ObserveInt64(depth, q, attrs)
			return nil
		}, inflight, depth)
	}
	if err != nil {
		return nil, serving.Errorf(serving.Internal, "limit: metrics: %w", err)
	}
	return t, nil
}

func (t *telemetry) queued(d time.Duration) {
	t.queueDur.Record(context.Background(), d.Seconds(), t.rec...)
}

func (t *telemetry) reject(why reason) {
	t.rejected.Add(context.Background(), 1, t.rejAttrs[why]...)
}

// close stops the observations, so the meter does not keep a closed
// Limiter alive.
func (t *telemetry) close() error {
	if err := t.reg.Unregister(); err != nil {
		return serving.Errorf(serving.Internal, "limit: metrics: %w", err)
	}
	return nil
}

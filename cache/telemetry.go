package cache

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the cache's metrics and spans.
const ScopeName = "github.com/servekit/servekit/cache"

// telemetry holds the instruments. Counters are recorded with attribute sets
// built once per model and version (attrSet), so recording costs no
// allocation on the hit path.
type telemetry struct {
	tracer    trace.Tracer
	hits      metric.Int64Counter
	misses    metric.Int64Counter
	coalesced metric.Int64Counter
	evictions metric.Int64Counter
	l2errors  metric.Int64Counter
	// l2rejected counts L2 values that failed authentication or the
	// bounds checks.
	l2rejected metric.Int64Counter
	reg        metric.Registration
	sets       sync.Map // modelVersion -> *attrSet
}

type modelVersion struct{ model, version string }

// attrSet is the pre-built options of one model and version, as slices so
// that passing them to a variadic Add allocates nothing.
type attrSet struct {
	plain, l1, l2 []metric.AddOption
}

func newTelemetry(c *Cache, mp metric.MeterProvider, tp trace.TracerProvider) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(ScopeName)
	t := &telemetry{tracer: tp.Tracer(ScopeName)}
	var err error
	if t.hits, err = m.Int64Counter("servekit.cache.hits", metric.WithUnit("{request}"),
		metric.WithDescription("Requests answered from the cache, by tier (l1, l2).")); err != nil {
		return nil, err
	}
	if t.misses, err = m.Int64Counter("servekit.cache.misses", metric.WithUnit("{request}"),
		metric.WithDescription("Requests the model computed, after missing every tier.")); err != nil {
		return nil, err
	}
	if t.coalesced, err = m.Int64Counter("servekit.cache.coalesced", metric.WithUnit("{request}"),
		metric.WithDescription("Requests that waited for an identical request's answer.")); err != nil {
		return nil, err
	}
	if t.evictions, err = m.Int64Counter("servekit.cache.evictions", metric.WithUnit("{entry}"),
		metric.WithDescription("L1 entries evicted to stay within the entry and byte bounds.")); err != nil {
		return nil, err
	}
	if t.l2errors, err = m.Int64Counter("servekit.cache.l2.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Failed or timed-out Redis calls.")); err != nil {
		return nil, err
	}
	if t.l2rejected, err = m.Int64Counter("servekit.cache.l2.rejected", metric.WithUnit("{entry}"),
		metric.WithDescription("L2 entries that failed authentication or the bounds checks: each a miss, and deleted.")); err != nil {
		return nil, err
	}
	bytes, err := m.Int64ObservableGauge("servekit.cache.bytes", metric.WithUnit("By"),
		metric.WithDescription("Approximate memory held by L1 entries."))
	if err != nil {
		return nil, err
	}
	entries, err := m.Int64ObservableGauge("servekit.cache.entries", metric.WithUnit("{entry}"),
		metric.WithDescription("L1 entries."))
	if err != nil {
		return nil, err
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(bytes, c.bytes.Load())
		o.ObserveInt64(entries, c.entries.Load())
		return nil
	}, bytes, entries)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// set returns the attribute options of a model and version, building them
// on first use.
func (t *telemetry) set(model, version string) *attrSet {
	k := modelVersion{model, version}
	if s, ok := t.sets.Load(k); ok {
		return s.(*attrSet)
	}
	base := []attribute.KeyValue{attribute.String("model", model), attribute.String("version", version)}
	s := &attrSet{
		plain: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(base...))},
		l1:    []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(base, attribute.String("tier", "l1"))...))},
		l2:    []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], attribute.String("tier", "l2"))...))},
	}
	actual, loaded := t.sets.LoadOrStore(k, s)
	if !loaded {
		// Coalescing needs identical requests in flight at once, which a
		// model may never see: its series starts at 0, so a dashboard
		// shows none rather than no data (and examples/monitoring's check
		// does not depend on the timing of a burst).
		t.coalesced.Add(context.Background(), 0, s.plain...)
	}
	return actual.(*attrSet)
}

func (t *telemetry) evicted(s *attrSet) {
	if s != nil {
		t.evictions.Add(context.Background(), 1, s.plain...)
	}
}

func (t *telemetry) close() error {
	return t.reg.Unregister()
}

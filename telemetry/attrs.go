package telemetry

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// Attribute keys shared by the whole project.
const (
	keyModel     = attribute.Key("model")
	keyVersion   = attribute.Key("version")
	keyCode      = attribute.Key("code")
	keyRequestID = attribute.Key("request.id")
)

// numCodes counts the codes serving defines; an attribute set per code is
// built once for each (model, version).
const numCodes = int(serving.Internal) + 1

// maxCached bounds the attribute cache. Model and version come from the
// request before any router has checked them, so a client could send
// arbitrary names; past this many pairs, sets are built per call (slower,
// correct) instead of growing memory without end, and their in-flight
// requests are counted in one series marked otel.metric.overflow=true, as
// the SDK marks series past its own cardinality limit (2000 by default).
const maxCached = 2000

type key struct{ model, version string }

// attrs holds the pre-built options for one (model, version): building an
// attribute.Set sorts and allocates, and wrapping it into an option boxes it
// in an interface, so both are done once, not per request. The slices are
// passed with ... so the variadic call does not build (and heap-allocate) a
// new slice through the interface method call.
type attrs struct {
	// inflight counts this pair's requests in flight; the observable
	// servekit.requests.inflight reads it at collection, so the hot path
	// pays two atomic adds instead of two SDK measurements.
	inflight   atomic.Int64
	inflightMV metric.ObserveOption            // model, version
	add        [numCodes][]metric.AddOption    // model, version, code
	record     [numCodes][]metric.RecordOption // model, version, code
	span       []attribute.KeyValue            // model, version, set on recording spans
	overflow   *atomic.Int64                   // where inflight counts when not cached, else nil
}

// counter is where this pair's in-flight requests are counted.
func (a *attrs) counter() *atomic.Int64 {
	if a.overflow != nil {
		return a.overflow
	}
	return &a.inflight
}

func newAttrs(k key) *attrs {
	a := &attrs{}
	mv := attribute.NewSet(keyModel.String(k.model), keyVersion.String(k.version))
	a.inflightMV = metric.WithAttributeSet(mv)
	for c := range numCodes {
		o := codeOption(k, serving.Code(c))
		a.add[c] = []metric.AddOption{o}
		a.record[c] = []metric.RecordOption{o}
	}
	a.span = []attribute.KeyValue{keyModel.String(k.model), keyVersion.String(k.version)}
	return a
}

func codeOption(k key, c serving.Code) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(
		keyModel.String(k.model), keyVersion.String(k.version), keyCode.String(c.String())))
}

// outcome returns the options for a result with code c; codes serving does
// not define (none today) get a set built on the spot.
func (a *attrs) outcome(k key, c serving.Code) ([]metric.AddOption, []metric.RecordOption) {
	if int(c) < numCodes {
		return a.add[c], a.record[c]
	}
	o := codeOption(k, c)
	return []metric.AddOption{o}, []metric.RecordOption{o}
}

// attrCache maps (model, version) to its attrs. Reads are a plain map lookup
// on an immutable map behind an atomic pointer: no lock, and unlike
// sync.Map no boxing of the struct key into an interface (an allocation per
// lookup). Writes copy the map under mu; they happen once per new pair.
type attrCache struct {
	m        atomic.Pointer[map[key]*attrs]
	mu       sync.Mutex   // serialises writers
	overflow atomic.Int64 // in flight for pairs past maxCached
}

// observe reports every cached pair's in-flight count, and the overflow's
// when there is one.
func (c *attrCache) observe(o metric.Observer, inst metric.Int64ObservableUpDownCounter) {
	if m := c.m.Load(); m != nil {
		for _, a := range *m {
			o.ObserveInt64(inst, a.inflight.Load(), a.inflightMV)
		}
		if len(*m) >= maxCached {
			o.ObserveInt64(inst, c.overflow.Load(), overflowSet)
		}
	}
}

// overflow counts the in-flight requests of pairs past maxCached.
var overflowSet = metric.WithAttributeSet(attribute.NewSet(attribute.Bool("otel.metric.overflow", true)))

func (c *attrCache) get(k key) *attrs {
	if m := c.m.Load(); m != nil {
		if a, ok := (*m)[k]; ok {
			return a
		}
	}
	return c.slow(k)
}

func (c *attrCache) slow(k key) *attrs {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if a, ok := (*old)[k]; ok {
			return a
		}
		if len(*old) >= maxCached {
			a := newAttrs(k)
			a.overflow = &c.overflow
			return a
		}
	}
	a := newAttrs(k)
	next := make(map[key]*attrs, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[k] = a
	c.m.Store(&next)
	return a
}

func lenOf(m *map[key]*attrs) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

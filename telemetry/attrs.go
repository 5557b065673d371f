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

// numCodes counts the codes serving defines; each (model, version) has a
// slot per code, and one more, slotUnknown, for a Code value serving does
// not define (a caller's own serving.Code(42)): labelled "unknown" rather
// than given a slot of its own, so that a pair's memory stays fixed.
const (
	numCodes    = int(serving.Internal) + 1
	slotUnknown = numCodes
	numSlots    = numCodes + 1
)

func slotOf(c serving.Code) int {
	if int(c) < numCodes {
		return int(c)
	}
	return slotUnknown
}

func slotName(slot int) string {
	if slot == slotUnknown {
		return "unknown"
	}
	return serving.Code(slot).String()
}

// maxCached bounds the attribute cache. Model and version come from the
// request before any router has checked them, so a client could send
// arbitrary names; past this many pairs, histogram attribute sets are built
// per call (slower, correct) instead of growing memory without end, and
// the pairs' requests, answered and in flight, are counted in series marked
// otel.metric.overflow=true, as the SDK marks series past its own
// cardinality limit (2000 by default).
const maxCached = 2000

type key struct{ model, version string }

// counts are the atomics the observable instruments read at collection.
type counts struct {
	inflight atomic.Int64
	answered [numSlots]atomic.Int64
}

// attrs holds what is recorded for one (model, version): its counters and
// the pre-built options of its histogram measurements. Building an
// attribute.Set sorts and allocates, and wrapping it into an option boxes
// it in an interface, so both are done once, not per request. The record
// slices are passed with ... so the variadic call does not build (and
// heap-allocate) a new slice through the interface method call.
type attrs struct {
	// own counts this pair; overflow points at the cache's shared counts
	// for pairs past maxCached, else it is nil.
	own      counts
	overflow *counts

	inflightMV metric.ObserveOption            // model, version
	answered   [numSlots]metric.ObserveOption  // model, version, code
	record     [numSlots][]metric.RecordOption // model, version, code
	span       []attribute.KeyValue            // model, version, set on recording spans
}

// counts is where this pair's requests are counted.
func (a *attrs) counts() *counts {
	if a.overflow != nil {
		return a.overflow
	}
	return &a.own
}

func newAttrs(k key) *attrs {
	a := &attrs{}
	mv := attribute.NewSet(keyModel.String(k.model), keyVersion.String(k.version))
	a.inflightMV = metric.WithAttributeSet(mv)
	for slot := range numSlots {
		o := metric.WithAttributeSet(attribute.NewSet(
			keyModel.String(k.model), keyVersion.String(k.version), keyCode.String(slotName(slot))))
		a.answered[slot] = o
		a.record[slot] = []metric.RecordOption{o}
	}
	a.span = []attribute.KeyValue{keyModel.String(k.model), keyVersion.String(k.version)}
	return a
}

// attrCache maps (model, version) to its attrs. Reads are a plain map lookup
// on an immutable map behind an atomic pointer: no lock, and unlike
// sync.Map no boxing of the struct key into an interface (an allocation per
// lookup). Writes copy the map under mu; they happen once per new pair.
type attrCache struct {
	m        atomic.Pointer[map[key]*attrs]
	mu       sync.Mutex // serialises writers
	overflow counts     // requests of pairs past maxCached
}

// observe reports every cached pair's counts, and the overflow's when
// there is one. Codes a pair never answered with are left out, as a
// synchronous counter would never have created their series.
func (c *attrCache) observe(o metric.Observer, inflight metric.Int64ObservableUpDownCounter,
	answered metric.Int64ObservableCounter) {
	m := c.m.Load()
	if m == nil {
		return
	}
	for _, a := range *m {
		o.ObserveInt64(inflight, a.own.inflight.Load(), a.inflightMV)
		for slot := range numSlots {
			if n := a.own.answered[slot].Load(); n != 0 {
				o.ObserveInt64(answered, n, a.answered[slot])
			}
		}
	}
	if len(*m) >= maxCached {
		o.ObserveInt64(inflight, c.overflow.inflight.Load(), overflowSet)
		var n int64
		for slot := range numSlots {
			n += c.overflow.answered[slot].Load()
		}
		o.ObserveInt64(answered, n, overflowSet)
	}
}

// overflowSet labels the series of pairs past maxCached.
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

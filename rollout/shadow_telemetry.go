package rollout

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/serving"
)

// Attribute keys of the shadow's metrics.
const (
	attrModel      = attribute.Key("model")
	attrVersion    = attribute.Key("version")
	attrChallenger = attribute.Key("challenger_version")
	attrOutput     = attribute.Key("output")
	attrSide       = attribute.Key("side")
	attrCode       = attribute.Key("code")
	attrAgreed     = attribute.Key("agreed")
)

// shadowTelemetry exports a Shadow's statistics. The counters are
// observable: they read the numbers Snapshot reads, at collection, so the
// primary's path records nothing and a guard and a dashboard see the same
// figures. Only the latency histogram is recorded as mirrors complete, off
// the primary's path.
type shadowTelemetry struct {
	duration metric.Float64Histogram
	reg      metric.Registration
}

// keyAttrs are the pre-built attribute options of one primaryKey.
type keyAttrs struct {
	set             []attribute.KeyValue
	obs             metric.ObserveOption
	primary, shadow []metric.RecordOption
}

// outputAttrs are those of one output of one primaryKey, built at the
// first collection that sees it.
type outputAttrs struct {
	obs, agreed, disagreed metric.ObserveOption
}

// durationBuckets are the boundaries of servekit.shadow.duration in
// seconds, those of the telemetry package's request duration, so the two
// compare bucket by bucket.
var durationBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

func newShadowTelemetry(s *Shadow, mp metric.MeterProvider) (*shadowTelemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	t := &shadowTelemetry{}
	var err error
	if t.duration, err = m.Float64Histogram("servekit.shadow.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to answer a mirrored request, by side (primary, shadow)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	counter := func(name, unit, desc string) (metric.Int64ObservableCounter, error) {
		return m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	}
	gauge := func(name, unit, desc string) (metric.Float64ObservableGauge, error) {
		return m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	}
	var counts [7]metric.Int64ObservableCounter
	for i, c := range []struct{ name, desc string }{
		{"servekit.shadow.sampled", "Primary requests chosen to be mirrored."},
		{"servekit.shadow.mirrored", "Requests sent to the challenger."},
		{"servekit.shadow.dropped", "Sampled requests not mirrored: every mirror slot was busy, or the shadow was closing."},
		{"servekit.shadow.completed", "Mirrors finished, in any way."},
		{"servekit.shadow.timeouts", "Mirrors the challenger did not answer within the mirror timeout."},
		{"servekit.shadow.panics", "Mirrors in which the challenger panicked."},
		{"servekit.shadow.pairs", "Mirrors where both sides answered, which were compared."},
	} {
		if counts[i], err = counter(c.name, "{request}", c.desc); err != nil {
			return nil, err
		}
	}
	errs, err := counter("servekit.shadow.errors", "{request}", "Failed answers among completed mirrors, by side and code.")
	if err != nil {
		return nil, err
	}
	decisions, err := counter("servekit.shadow.decisions", "{decision}",
		"Decisions compared per output (rows for argmax, elements otherwise), by agreed=true|false.")
	if err != nil {
		return nil, err
	}
	inFlight, err := m.Int64ObservableUpDownCounter("servekit.shadow.in_flight", metric.WithUnit("{request}"),
		metric.WithDescription("Mirrors running now."))
	if err != nil {
		return nil, err
	}
	var gauges [4]metric.Float64ObservableGauge
	for i, g := range []struct{ name, desc string }{
		{"servekit.shadow.agreement", "Agreed decisions over decisions, per output."},
		{"servekit.shadow.diff.abs.max", "Largest absolute element difference, per output."},
		{"servekit.shadow.diff.rel.max", "Largest relative element difference |p-c|/max(|p|,|c|), per output."},
		{"servekit.shadow.diff.abs.mean", "Mean absolute element difference, per output."},
	} {
		if gauges[i], err = gauge(g.name, "1", g.desc); err != nil {
			return nil, err
		}
	}
	challengerOnly := metric.WithAttributeSet(attribute.NewSet(attrChallenger.String(s.cfg.challenger)))
	observe := func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inFlight, s.state.Load()&^closedBit, challengerOnly)
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, st := range s.keys {
			a := st.attrs
			for i, n := range []int64{st.sampled.Load(), st.mirrored.Load(), st.dropped.Load(),
				st.completed, st.timedOut, st.panicked, st.pairs} {
				o.ObserveInt64(counts[i], n, a.obs)
			}
			for _, sd := range []struct {
				name string
				s    *side
			}{{"primary", &st.primary}, {"shadow", &st.shadow}} {
				for c, n := range sd.s.errors {
					if n > 0 {
						o.ObserveInt64(errs, n, metric.WithAttributes(append(slices.Clone(a.set),
							attrSide.String(sd.name), attrCode.String(serving.Code(c).String()))...))
					}
				}
			}
			for name, acc := range st.outputs {
				if acc.attrs == nil {
					acc.attrs = newOutputAttrs(a.set, name)
				}
				oa := acc.attrs
				o.ObserveInt64(decisions, acc.agreed, oa.agreed)
				o.ObserveInt64(decisions, acc.decisions-acc.agreed, oa.disagreed)
				out := acc.stats(name)
				for i, v := range []float64{out.Agreement, out.MaxAbsDiff, out.MaxRelDiff, out.MeanAbsDiff} {
					o.ObserveFloat64(gauges[i], v, oa.obs)
				}
			}
		}
		return nil
	}
	insts := []metric.Observable{errs, decisions, inFlight}
	for _, c := range counts {
		insts = append(insts, c)
	}
	for _, g := range gauges {
		insts = append(insts, g)
	}
	if t.reg, err = m.RegisterCallback(observe, insts...); err != nil {
		return nil, err
	}
	return t, nil
}

// attach builds st's attribute options. Called with Shadow.mu held.
func (t *shadowTelemetry) attach(st *pairStats, challenger string) {
	set := []attribute.KeyValue{attrModel.String(st.key.model), attrVersion.String(st.key.version), attrChallenger.String(challenger)}
	withSide := func(side string) []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(append(slices.Clone(set), attrSide.String(side))...))}
	}
	st.attrs = &keyAttrs{
		set:     set,
		obs:     metric.WithAttributeSet(attribute.NewSet(set...)),
		primary: withSide("primary"),
		shadow:  withSide("shadow"),
	}
}

func newOutputAttrs(base []attribute.KeyValue, output string) *outputAttrs {
	kv := append(slices.Clone(base), attrOutput.String(output))
	return &outputAttrs{
		obs:       metric.WithAttributeSet(attribute.NewSet(kv...)),
		agreed:    metric.WithAttributeSet(attribute.NewSet(append(slices.Clone(kv), attrAgreed.Bool(true))...)),
		disagreed: metric.WithAttributeSet(attribute.NewSet(append(slices.Clone(kv), attrAgreed.Bool(false))...)),
	}
}

// recorded records a completed mirror's latencies on both sides.
func (t *shadowTelemetry) recorded(ctx context.Context, st *pairStats, m *completedMirror) {
	t.duration.Record(ctx, m.primaryLatency.Seconds(), st.attrs.primary...)
	t.duration.Record(ctx, m.shadowLatency.Seconds(), st.attrs.shadow...)
}

func (t *shadowTelemetry) close() {
	if err := t.reg.Unregister(); err != nil {
		otel.Handle(err)
	}
}

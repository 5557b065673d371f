package rollout

import (
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// ShadowSnapshot is what a Shadow has measured since it was made: plain
// numbers, safe to keep, compare and encode as JSON. The package doc defines
// every figure. Rates are 0, not NaN, when nothing was counted; look at the
// counts beside them.
type ShadowSnapshot struct {
	// Challenger names the challenger (WithChallengerVersion).
	Challenger string `json:"challenger"`
	// Active is false once the Shadow was closed (or shut down).
	Active bool `json:"active"`
	// Percent is the share of requests mirrored now; MaxInFlight the bound on
	// mirrors running at once (WithMaxMirrors); InFlight the mirrors
	// admitted and not finished, of which Queued wait to run.
	Percent     float64 `json:"percent"`
	MaxInFlight int     `json:"max_in_flight"`
	InFlight    int64   `json:"in_flight"`
	Queued      int64   `json:"queued"`
	// Sampled primary requests were chosen to be mirrored; of them, Mirrored
	// were sent to the challenger and Dropped were not (every slot running
	// and the queue full, or the Shadow closing); the rest are queued. Completed mirrors have
	// finished in any way; TimedOut and Panicked of them did not answer in
	// time or panicked; Pairs had answers on both sides, which were compared.
	Sampled   int64 `json:"sampled"`
	Mirrored  int64 `json:"mirrored"`
	Dropped   int64 `json:"dropped"`
	Completed int64 `json:"completed"`
	TimedOut  int64 `json:"timed_out"`
	Panicked  int64 `json:"panicked"`
	Pairs     int64 `json:"pairs"`
	// Primary and Shadow describe both sides over the completed mirrors.
	Primary SideStats `json:"primary"`
	Shadow  SideStats `json:"shadow"`
	// ErrorRateDiff is Shadow.ErrorRate − Primary.ErrorRate: positive when
	// the challenger fails more often on the same requests.
	ErrorRateDiff float64 `json:"error_rate_diff"`
	// Outputs compares each output the primary answered, by name.
	Outputs []OutputStats `json:"outputs"`
}

// SideStats is one side of the mirrored pairs.
type SideStats struct {
	// Errors among the completed mirrors, ErrorRate = Errors / Completed, and
	// the errors by code ("deadline_exceeded", …).
	Errors       int64            `json:"errors"`
	ErrorRate    float64          `json:"error_rate"`
	ErrorsByCode map[string]int64 `json:"errors_by_code,omitempty"`
	// P50 and P99 of the time to answer (or fail), over every completed
	// mirror, from a log-linear histogram (8 buckets per power of two,
	// interpolated within the bucket: off by well under 12.5 %).
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
}

// OutputStats compares one output over every pair that had it.
type OutputStats struct {
	Name string `json:"name"`
	// Rule is the comparison used ("argmax", "threshold(0.5)", …).
	Rule string `json:"rule"`
	// Pairs that had this output on the primary side; Mismatched of them had
	// no comparable output from the challenger (missing, invalid, another
	// shape, BYTES against numbers), whose decisions all count as disagreed.
	Pairs      int64 `json:"pairs"`
	Mismatched int64 `json:"mismatched"`
	// Decisions made (rows for argmax, elements otherwise) and Agreed of
	// them; Agreement = Agreed / Decisions.
	Decisions int64   `json:"decisions"`
	Agreed    int64   `json:"agreed"`
	Agreement float64 `json:"agreement"`
	// Element-wise differences of numeric outputs: Elements compared, and of
	// them the largest absolute difference |p−c|, the largest relative
	// difference |p−c| / max(|p|,|c|) and the mean absolute difference.
	// NonFinite counts elements left out because exactly one side was NaN or
	// infinite (or both, unequal).
	Elements    int64   `json:"elements"`
	NonFinite   int64   `json:"non_finite"`
	MaxAbsDiff  float64 `json:"max_abs_diff"`
	MaxRelDiff  float64 `json:"max_rel_diff"`
	MeanAbsDiff float64 `json:"mean_abs_diff"`
}

// MinAgreement returns the lowest Agreement over the outputs that made
// decisions, and the number of pairs behind it; ok is false when no output
// has made a decision yet. A guard reads it.
func (s ShadowSnapshot) MinAgreement() (rate float64, pairs int64, ok bool) {
	rate = 1
	for _, o := range s.Outputs {
		if o.Decisions > 0 && (!ok || o.Agreement < rate) {
			rate, ok = o.Agreement, true
		}
	}
	return rate, s.Pairs, ok
}

// Output returns the comparison of the named output.
func (s ShadowSnapshot) Output(name string) (OutputStats, bool) {
	for _, o := range s.Outputs {
		if o.Name == name {
			return o, true
		}
	}
	return OutputStats{}, false
}

// primaryKey is the model and version that answered a mirrored request, as
// metrics label it. version is empty when the primary failed (so a client
// cannot grow the label set by naming versions that do not exist).
type primaryKey struct{ model, version string }

// maxKeys bounds the primaries a Shadow keeps apart; any further ones share
// one entry labelled version "other". A router has a handful of versions.
const maxKeys = 64

// pairStats is everything measured for one primaryKey. The counters that
// the primary's goroutine touches are atomics; the rest is guarded by
// Shadow.mu and written only by mirror goroutines.
type pairStats struct {
	key                        primaryKey
	attrs                      *keyAttrs // metric attributes, set once made
	sampled, mirrored, dropped atomic.Int64

	completed, timedOut, panicked, pairs int64
	primary, shadow                      side
	outputs                              map[string]*outputAcc
	order                                []string // output names in first-seen order
}

type side struct {
	errors [numCodes]int64 // by code; OK unused
	lat    histogram       // the Router's latency histogram, for p50 and p99
}

type outputAcc struct {
	rule                                                string
	pairs, mismatched, decisions, agreed, elems, nonFin int64
	sumAbs, maxAbs, maxRel                              float64
	attrs                                               *outputAttrs // built at first collection
}

func (a *outputAcc) add(r outputResult) {
	one := outputAcc{
		rule: r.rule.String(), pairs: 1, decisions: r.decisions, agreed: r.agreed,
		elems: r.elements, nonFin: r.nonFinite, sumAbs: r.sumAbs, maxAbs: r.maxAbs, maxRel: r.maxRel,
	}
	if r.mismatched {
		one.mismatched = 1
	}
	a.rule = one.rule // Auto may resolve differently as shapes change: show the latest
	a.merge(&one)
}

func (a *outputAcc) merge(o *outputAcc) {
	if a.rule == "" {
		a.rule = o.rule
	}
	a.pairs += o.pairs
	a.mismatched += o.mismatched
	a.decisions += o.decisions
	a.agreed += o.agreed
	a.elems += o.elems
	a.nonFin += o.nonFin
	a.sumAbs += o.sumAbs
	a.maxAbs = max(a.maxAbs, o.maxAbs)
	a.maxRel = max(a.maxRel, o.maxRel)
}

func (a *outputAcc) stats(name string) OutputStats {
	o := OutputStats{
		Name: name, Rule: a.rule, Pairs: a.pairs, Mismatched: a.mismatched,
		Decisions: a.decisions, Agreed: a.agreed, Elements: a.elems, NonFinite: a.nonFin,
		MaxAbsDiff: a.maxAbs, MaxRelDiff: a.maxRel,
	}
	o.Agreement = ratio(a.agreed, a.decisions)
	if a.elems > 0 {
		o.MeanAbsDiff = a.sumAbs / float64(a.elems)
	}
	return o
}

// record adds one completed mirror. Called with Shadow.mu held.
func (st *pairStats) record(m *completedMirror) {
	st.completed++
	st.primary.lat[bucketOf(int64(m.primaryLatency))]++
	st.shadow.lat[bucketOf(int64(m.shadowLatency))]++
	if c := serving.CodeOf(m.primaryErr); c != serving.OK {
		st.primary.errors[min(int(c), numCodes-1)]++
	}
	if c := m.shadowCode; c != serving.OK {
		st.shadow.errors[min(int(c), numCodes-1)]++
	}
	if m.timedOut {
		st.timedOut++
	}
	if m.panicked {
		st.panicked++
	}
	if m.results == nil {
		return
	}
	st.pairs++
	for i := range m.results {
		st.output(m.names[i]).add(m.results[i])
	}
}

// output returns the accumulator of the named output, making it on first
// use.
func (st *pairStats) output(name string) *outputAcc {
	if st.outputs == nil {
		st.outputs = make(map[string]*outputAcc)
	}
	a := st.outputs[name]
	if a == nil {
		a = &outputAcc{}
		st.outputs[name] = a
		st.order = append(st.order, name)
	}
	return a
}

// merge adds o into st (for the aggregate snapshot).
func (st *pairStats) merge(o *pairStats) {
	st.sampled.Add(o.sampled.Load())
	st.mirrored.Add(o.mirrored.Load())
	st.dropped.Add(o.dropped.Load())
	st.completed += o.completed
	st.timedOut += o.timedOut
	st.panicked += o.panicked
	st.pairs += o.pairs
	for i := range st.primary.errors {
		st.primary.errors[i] += o.primary.errors[i]
		st.shadow.errors[i] += o.shadow.errors[i]
	}
	for i := range st.primary.lat {
		st.primary.lat[i] += o.primary.lat[i]
		st.shadow.lat[i] += o.shadow.lat[i]
	}
	for _, name := range o.order {
		st.output(name).merge(o.outputs[name])
	}
}

// snapshot fills the counting fields of s from st.
func (st *pairStats) snapshot(s *ShadowSnapshot) {
	s.Sampled, s.Mirrored, s.Dropped = st.sampled.Load(), st.mirrored.Load(), st.dropped.Load()
	s.Completed, s.TimedOut, s.Panicked, s.Pairs = st.completed, st.timedOut, st.panicked, st.pairs
	s.Primary = st.primary.stats(st.completed)
	s.Shadow = st.shadow.stats(st.completed)
	s.ErrorRateDiff = s.Shadow.ErrorRate - s.Primary.ErrorRate
	names := slices.Clone(st.order)
	slices.SortFunc(names, strings.Compare)
	s.Outputs = make([]OutputStats, 0, len(names))
	for _, name := range names {
		s.Outputs = append(s.Outputs, st.outputs[name].stats(name))
	}
}

func (sd *side) stats(completed int64) SideStats {
	s := SideStats{P50: sd.lat.quantile(0.50), P99: sd.lat.quantile(0.99)}
	for c, n := range sd.errors {
		if n == 0 {
			continue
		}
		if s.ErrorsByCode == nil {
			s.ErrorsByCode = make(map[string]int64)
		}
		s.ErrorsByCode[serving.Code(c).String()] = n
		s.Errors += n
	}
	s.ErrorRate = ratio(s.Errors, completed)
	return s
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

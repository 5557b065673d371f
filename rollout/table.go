package rollout

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// entry is one version: its name, the Predictor serving it now (a slot,
// swapped by a hot replace) and its stats, which outlive replacements.
type entry struct {
	name  string
	cur   atomic.Pointer[slot]
	stats vstats
}

func newEntry(name string, p serving.Predictor, now time.Time, window time.Duration) *entry {
	e := &entry{name: name}
	e.stats.win = newWindow(now, window)
	e.cur.Store(newSlot(p))
	return e
}

// acquire returns the current slot with a reference taken, or nil when the
// version has been removed (or the router closed) since the caller found it.
func (e *entry) acquire() *slot {
	for {
		s := e.cur.Load()
		if s == nil {
			return nil
		}
		if s.tryRef() {
			return s
		}
		// s was retired and drained between the Load and the ref: it is
		// no longer current, so the next Load sees its successor.
	}
}

// slot holds one Predictor of a version with a reference count: one for
// the router while it is current, one per request inside it. Whoever drops
// the count to zero closes the Predictor, so no request ever reaches it
// closed and it is closed exactly once.
type slot struct {
	p    serving.Predictor
	refs atomic.Int64
	done chan struct{} // closed once p is closed
	err  error         // p's Close error; written before done is closed
}

func newSlot(p serving.Predictor) *slot {
	s := &slot{p: p, done: make(chan struct{})}
	s.refs.Store(1)
	return s
}

// tryRef takes a reference unless the count already reached zero: a
// drained slot must never be revived.
func (s *slot) tryRef() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *slot) ready() bool { return serving.IsReady(s.p) }

// release drops a reference; the last one closes the Predictor. Control
// calls (inline) close it at once; a request hands it to a goroutine so its
// caller does not wait for a close.
func (s *slot) release(r *Router, inline bool) {
	if s.refs.Add(-1) != 0 {
		return
	}
	if inline {
		s.finish(r)
		return
	}
	go s.finish(r) // owned: Close waits for s.done
}

// finish closes a drained slot's Predictor. Every retired slot is in
// r.draining until then, so Close can wait for it.
func (s *slot) finish(r *Router) {
	s.err = serving.Close(s.p)
	if s.err != nil {
		r.cfg.log.Warn("rollout: closing a retired version failed", "model", r.model, "err", s.err)
	}
	r.mu.Lock()
	delete(r.draining, s)
	r.mu.Unlock()
	close(s.done)
}

// table is the routing state requests read without a lock: an immutable
// value behind an atomic pointer, replaced whole by every change.
type table struct {
	closed  bool
	entries []*entry          // in version order (compareVersions): who owns which cells
	byName  map[string]*entry //
	added   []string          // in the order versions were added (serving.Versioned)
	weights assignment
	// bounds[i] ends the cells of entries[i]: it owns [bounds[i-1], bounds[i]).
	bounds []int32
	// heavy lists the entries with weight, most first: the fallback order
	// when the entry owning a point is not ready.
	heavy []*entry
}

func newTable(entries []*entry, added []string, w assignment) *table {
	t := &table{entries: entries, added: added, weights: w, byName: make(map[string]*entry, len(entries))}
	t.bounds = make([]int32, len(entries))
	var sum int32
	for i, e := range entries {
		t.byName[e.name] = e
		sum += w[e.name]
		t.bounds[i] = sum
		if w[e.name] > 0 {
			t.heavy = append(t.heavy, e)
		}
	}
	slices.SortStableFunc(t.heavy, func(a, b *entry) int { return int(w[b.name] - w[a.name]) })
	return t
}

// with returns t plus e, which joins with weight 0 unless t has no weight
// at all (no version, or all removed): then it takes everything.
func (t *table) with(e *entry) *table {
	entries := append(slices.Clone(t.entries), e)
	slices.SortFunc(entries, func(a, b *entry) int { return compareVersions(a.name, b.name) })
	w := t.weights
	if len(w) == 0 {
		w = assignment{e.name: total}
	}
	return newTable(entries, append(slices.Clone(t.added), e.name), w)
}

// without returns t less version v, which has no weight (or is the last
// version, whose weight goes with it).
func (t *table) without(v string) *table {
	entries := slices.DeleteFunc(slices.Clone(t.entries), func(e *entry) bool { return e.name == v })
	added := slices.DeleteFunc(slices.Clone(t.added), func(n string) bool { return n == v })
	w := t.weights
	if w[v] > 0 {
		w = assignment{}
	}
	return newTable(entries, added, w)
}

// withWeights returns t with assignment w.
func (t *table) withWeights(w assignment) *table { return newTable(t.entries, t.added, w) }

// owner returns the entry whose cells contain pt.
func (t *table) owner(pt int32) *entry {
	for i, b := range t.bounds {
		if pt < b {
			return t.entries[i]
		}
	}
	return nil // no weight at all
}

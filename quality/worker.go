package quality

import (
	"slices"
	"time"
)

// worker is the state the monitor's goroutine owns: the rings, windows,
// detectors and alarms. Nothing here is touched from another goroutine,
// so the per-prediction work takes no lock.
type worker struct {
	m        *Monitor
	cfg      *config
	obs      []obs     // the batch being taken in, swapped with the buffer's
	scores   []float64 // its scores
	scratch  [4][]float64
	sink     uint64 // what prefetching read
	models   map[string]*modelState
	epoch    time.Time
	tick     <-chan time.Time
	stopTick func()
}

// modelState is one model's ring and its versions.
type modelState struct {
	plan      *plan
	ring      *ring
	trackers  []*tracker // by slot.ver
	byVersion map[string]*tracker
}

// tracker is one model version's windows, detectors and alarms.
type tracker struct {
	key  mvKey
	id   uint16
	ms   *modelState
	ref  *Reference
	cur  *window   // being filled
	wins []*window // closed, oldest first, at most the history
	hyst map[string]*hysteresis
	dets []detector
	// changes are the detections, newest last, at most the history.
	changes             []Change
	nChanges            map[Detector]int64
	predictions, labels int64
}

type window struct {
	Window
	first, last uint64  // the seq range in the model's ring; first 0 when empty
	est         values  // the estimate, computed when the window closed
	estCounts   *counts // its expected row sets
	estN        int64
	dirty       bool  // labels arrived since the result was computed
	computed    int64 // Labelled when the result was computed
	settled     bool
	res         Result
}

type hysteresis struct {
	alarmed  bool
	up, down int
	reason   string
	since    time.Time
}

// detector is one change detector on a version's error stream.
type detector struct {
	kind  Detector
	ph    *pageHinkley
	ad    *adwin
	quiet int64 // labels since its last detection; alarm held below changeHold
}

func newWorker(m *Monitor) *worker {
	w := &worker{m: m, cfg: m.cfg, models: map[string]*modelState{}, epoch: m.cfg.clock.Now(), stopTick: func() {}}
	w.tick, w.stopTick = m.cfg.clock.NewTicker(m.cfg.refresh)
	return w
}

func (w *worker) run() {
	defer close(w.m.exited)
	defer w.stopTick()
	for {
		select {
		case <-w.m.wake:
			w.drain()
		case f := <-w.m.ctrl:
			f()
		case <-w.tick:
			w.drain()
			w.refresh(w.cfg.clock.Now())
		case <-w.m.done:
			return
		}
	}
}

// drain takes in every prediction buffered: it swaps the buffer's batch
// for its own emptied one and works through it without the lock.
func (w *worker) drain() {
	b := &w.m.buf
	b.mu.Lock()
	w.obs, b.obs = b.obs, w.obs[:0]
	w.scores, b.scores = b.scores, w.scores[:0]
	requests := b.requests
	b.requests = 0
	b.mu.Unlock()
	w.m.n.requests.Add(requests)
	w.take(w.obs, w.scores)
	clear(w.obs) // let the plans and versions go
}

func (w *worker) model(pl *plan) *modelState {
	ms := w.models[pl.model]
	if ms == nil {
		ms = &modelState{plan: pl, ring: newRing(pl.task.width(), w.cfg.memory), byVersion: map[string]*tracker{}}
		w.models[pl.model] = ms
	}
	ms.plan = pl // the newest, with the newest references
	return ms
}

func (w *worker) tracker(ms *modelState, version string, now time.Time) *tracker {
	if tr := ms.byVersion[version]; tr != nil {
		tr.ref = ms.plan.reference(version)
		return tr
	}
	if len(ms.trackers) > 1<<16-1 {
		return nil // 65,535 versions of one model: the rest go unwatched
	}
	tr := &tracker{
		key: mvKey{Model: ms.plan.model, Version: version}, id: uint16(len(ms.trackers)), ms: ms,
		ref: ms.plan.reference(version), hyst: map[string]*hysteresis{}, nChanges: map[Detector]int64{},
	}
	for _, d := range w.cfg.detectors {
		switch d {
		case PageHinkley:
			tr.dets = append(tr.dets, detector{kind: d, ph: newPageHinkley(w.cfg.phDelta, w.cfg.phLambda, DefaultPHMinErrors), quiet: w.cfg.changeHold})
		case ADWIN:
			tr.dets = append(tr.dets, detector{kind: d, ad: newADWIN(w.cfg.adwinDelta), quiet: w.cfg.changeHold})
		}
	}
	tr.cur = w.newWindow(1, now)
	ms.trackers = append(ms.trackers, tr)
	ms.byVersion[version] = tr
	return tr
}

func (w *worker) newWindow(index int64, now time.Time) *window {
	win := &window{Window: Window{Index: index, Start: now}}
	if d := w.cfg.window.dur; d > 0 {
		win.Start = w.epoch.Add(now.Sub(w.epoch) / d * d)
		win.End = win.Start.Add(d)
	}
	return win
}

// take remembers a batch of predictions, in order.
func (w *worker) take(batch []obs, scores []float64) {
	var ms *modelState
	var tr *tracker
	off := 0
	stamp := w.cfg.clock.Now().UnixNano()
	w.m.n.predictions.Add(int64(len(batch)))
	for i := range batch {
		if i%prefetchAhead == 0 {
			w.prefetch(batch[i:min(i+prefetchAhead, len(batch))])
		}
		o := &batch[i]
		if o.at == 0 {
			o.at = stamp
		}
		if ms == nil || ms.plan != o.plan {
			ms, tr = w.model(o.plan), nil
		}
		sc := scores[off : off+ms.ring.width]
		off += ms.ring.width
		now := time.Unix(0, o.at)
		if tr == nil || tr.key.Version != o.version {
			if tr = w.tracker(ms, o.version, now); tr == nil {
				w.m.n.predictions.Add(-1)
				w.m.n.unwatched.Add(1)
				continue
			}
		}
		w.add(ms, tr, o, sc, now)
	}
}

// prefetchAhead is how many predictions take prepares at once.
const prefetchAhead = 128

// prefetch starts the index's cache misses for the next predictions of
// a batch before take works through them one by one: a ring bigger than
// the caches pays a miss per index insert and one per delete, and these
// overlap when issued together rather than one after another.
func (w *worker) prefetch(next []obs) {
	ms := w.models[next[0].plan.model]
	if ms == nil || ms.ring.len() < 1<<14 {
		return // small enough to stay in the caches
	}
	w.sink += ms.ring.prefetch(func(i int) uint64 {
		if next[i].plan != ms.plan {
			return 0
		}
		return next[i].key
	}, len(next))
}

// add remembers one prediction in its version's current window.
func (w *worker) add(ms *modelState, tr *tracker, o *obs, sc []float64, now time.Time) {
	tr.predictions++
	if w.cfg.window.dur > 0 && !now.Before(tr.cur.End) {
		w.closeWindow(tr, now)
	}
	if r := ms.ring; r.len() > 0 {
		if s, _ := r.at(r.head); s.at < o.at-int64(w.cfg.maxAge) {
			w.expire(ms, now)
		}
	}
	cur := tr.cur
	cur.Predictions++
	if !allFinite(sc) {
		cur.Invalid++
	} else {
		if ms.ring.full() {
			w.forget(ms)
			w.m.n.evicted.Add(1)
		}
		seq, dst := ms.ring.push(slot{key: o.key, at: o.at, win: uint32(cur.Index), ver: tr.id})
		copy(dst, sc)
		if cur.first == 0 {
			cur.first = seq
		}
		cur.last = seq
		if o.key != 0 {
			cur.Identified++
		}
	}
	if w.cfg.window.rows > 0 && cur.Predictions == w.cfg.window.rows {
		w.closeWindow(tr, now)
	}
	if tr.predictions == 1 {
		w.publishStatus(tr) // the version's first: make it known at once
	}
}

func allFinite(s []float64) bool {
	for _, v := range s {
		if !finite(v) {
			return false
		}
	}
	return true
}

// expire forgets the predictions older than the maximum age.
func (w *worker) expire(ms *modelState, now time.Time) {
	limit := now.Add(-w.cfg.maxAge).UnixNano()
	for r := ms.ring; r.len() > 0; {
		if s, _ := r.at(r.head); s.at >= limit {
			return
		}
		w.forget(ms)
		w.m.n.expired.Add(1)
	}
}

// forget drops the oldest remembered prediction. A closed window whose
// predictions begin to be forgotten is settled first, while all of them
// are there: its realized metrics are as final as they will get.
func (w *worker) forget(ms *modelState) {
	s, _ := ms.ring.at(ms.ring.head)
	tr := ms.trackers[s.ver]
	if len(tr.wins) == 0 || tr.wins[len(tr.wins)-1].settled || uint32(tr.cur.Index) == s.win {
		ms.ring.pop() // nothing to settle (the usual case): no window to look up
		return
	}
	if win := tr.window(s.win); win != nil && win != tr.cur && !win.settled {
		for _, old := range tr.wins {
			if old.settled {
				continue
			}
			w.settle(tr, old) // in order, up to this one
			if old == win {
				break
			}
		}
	}
	ms.ring.pop()
}

// closeWindow ends the version's current window, estimates and judges it,
// and starts the next one.
func (w *worker) closeWindow(tr *tracker, now time.Time) {
	win := tr.cur
	if w.cfg.window.dur == 0 {
		win.End = now
	}
	tr.cur = w.newWindow(win.Index+1, now)
	if win.Predictions == 0 {
		return // an empty time window is not reported
	}
	w.evaluate(tr, win, true)
	tr.wins = append(tr.wins, win)
	w.m.pub.windowClosed()
	raised, cleared, reasons := w.judgeClosed(tr, win)
	for len(tr.wins) > w.cfg.history {
		old := tr.wins[0]
		if !old.settled {
			w.settle(tr, old) // judged with what it has before it is dropped
		}
		tr.wins = tr.wins[1:]
	}
	w.finish(tr, win, raised, cleared, reasons, now)
}

// refresh closes time windows that ended, forgets expired predictions,
// settles windows whose labels are due and recomputes those that got
// labels.
//
// A window still waiting for labels is recomputed on a tick only once its
// labels grew by a tenth since it last was (or all its remembered
// predictions are labelled): a window whose labels trickle in over hours
// is recomputed tens of times, not once a second. Flush (all) recomputes
// every window that got labels.
func (w *worker) refresh(now time.Time) { w.refreshAll(now, false) }

func (w *worker) refreshAll(now time.Time, all bool) {
	for _, ms := range w.models {
		w.expire(ms, now)
		for _, tr := range ms.trackers {
			if w.cfg.window.dur > 0 && !now.Before(tr.cur.End) {
				w.closeWindow(tr, now)
			}
			for _, win := range tr.wins {
				if win.settled {
					continue
				}
				if !w.settleable(ms, win, now) {
					break // in order: hysteresis counts consecutive windows
				}
				w.settle(tr, win)
			}
			for _, win := range tr.wins {
				if win.dirty && !win.settled && (all || win.Labelled >= win.computed+max(1, win.computed/10) || win.Labelled >= win.Identified) {
					w.evaluate(tr, win, false)
					w.m.pub.result(tr.key, win.res, w.cfg.history)
				}
			}
			w.publishStatus(tr)
		}
	}
}

// settleable says a window's realized metrics are final: its labels are
// due, every remembered prediction with an id has one, or none of its
// predictions is remembered any more.
func (w *worker) settleable(ms *modelState, win *window, now time.Time) bool {
	return !now.Before(win.End.Add(w.cfg.labelDelay)) ||
		win.Identified > 0 && win.Labelled >= win.Identified ||
		win.first == 0 || win.last < ms.ring.head
}

func (w *worker) settle(tr *tracker, win *window) {
	win.settled = true
	w.evaluate(tr, win, false)
	raised, cleared, reasons := w.judgeSettled(tr, win)
	w.finish(tr, win, raised, cleared, reasons, win.End)
}

// window finds a version's window by the low 32 bits of its index.
func (tr *tracker) window(idx uint32) *window {
	if uint32(tr.cur.Index) == idx {
		return tr.cur
	}
	i, ok := slices.BinarySearchFunc(tr.wins, idx, func(w *window, idx uint32) int {
		return int(int64(uint32(w.Index)) - int64(idx))
	})
	if !ok {
		return nil
	}
	return tr.wins[i]
}

// label joins one label to every remembered prediction of its id, and
// reports whether there was one.
func (w *worker) label(ms *modelState, key uint64, v float64, now time.Time) bool {
	found := false
	ms.ring.find(key, func(_ uint64, s *slot, sc []float64) {
		found = true
		tr := ms.trackers[s.ver]
		first := s.lt == 0
		s.label, s.lt = v, now.UnixNano()
		win := tr.window(s.win)
		if win != nil && first {
			win.Labelled++
		}
		if win != nil {
			win.dirty = true
		}
		if first {
			tr.labels++
			w.detect(tr, sc, v, now)
		}
	})
	return found
}

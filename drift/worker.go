package drift

import (
	"slices"
	"time"
)

// worker is the state the monitor's goroutine owns: nothing here is touched
// from another goroutine, so the per-value work takes no lock.
type worker struct {
	m        *Monitor
	cfg      *config
	trackers map[mvKey]*tracker
	epoch    time.Time
	tick     <-chan time.Time
	stopTick func()
}

func newWorker(m *Monitor) *worker {
	w := &worker{m: m, cfg: m.cfg, trackers: map[mvKey]*tracker{}, epoch: m.cfg.clock.Now(), stopTick: func() {}}
	if m.cfg.window.timed() {
		w.tick, w.stopTick = m.cfg.clock.NewTicker(m.cfg.window.durStep)
	}
	return w
}

func (w *worker) run() {
	defer close(w.m.exited)
	defer w.stopTick()
	for {
		select {
		case rec := <-w.m.in:
			w.take(rec)
		case f := <-w.m.ctrl:
			f()
		case <-w.tick:
			now := w.cfg.clock.Now()
			for _, t := range w.trackers {
				w.roll(t, now)
			}
		case <-w.m.done:
			return
		}
	}
}

// drain takes in every record already queued.
func (w *worker) drain() {
	for {
		select {
		case rec := <-w.m.in:
			w.take(rec)
		default:
			return
		}
	}
}

// tracker is one model version's windows, hysteresis, or profile being
// learned.
type tracker struct {
	key     mvKey
	plan    *plan
	builder *ProfileBuilder // learning
	learned int
	panes   []pane // a ring; cur is the pane being filled
	cur     int
	filled  int            // completed panes, at most len(panes)
	scratch []FeatureState // the merged window, reused
	mv      MultivariateState
	hyst    []hysteresis
	checks  map[string]*hysteresis // data-quality checks and "multivariate"
	windows int64
	rowBuf  []float64 // one row of numerical features (multivariate)
	zBuf    []float64
}

type pane struct {
	feats      []FeatureState
	mv         MultivariateState
	rows       int64
	start, end time.Time
}

type hysteresis struct {
	alarmed  bool
	up, down int
}

func (w *worker) take(rec *record) {
	defer w.m.release(rec)
	// A record whose plan was replaced meanwhile (a new profile, a learned
	// one) is stale: taking it would restart the windows on the old plan.
	if w.m.lookup(rec.model, rec.version) != rec.plan {
		return
	}
	w.m.n.requests.Add(1)
	w.m.n.rows.Add(int64(rec.rows))
	key := mvKey{Model: rec.model, Version: rec.version}
	now := w.cfg.clock.Now()
	t := w.trackers[key]
	if t == nil || t.plan != rec.plan {
		old := t
		t = w.newTracker(key, rec.plan, now)
		if old != nil {
			t.windows = old.windows // a new profile: the window numbers go on
		}
		w.trackers[key] = t
	}
	if t.builder != nil {
		w.learn(t, rec, now)
		return
	}
	if w.cfg.window.timed() {
		w.roll(t, now)
		w.add(t, &t.panes[t.cur], rec, 0, rec.rows)
		t.panes[t.cur].rows += int64(rec.rows)
		return
	}
	step := w.cfg.window.rowStep
	for r := 0; r < rec.rows; {
		p := &t.panes[t.cur]
		k := int(min(int64(rec.rows-r), step-p.rows))
		w.add(t, p, rec, r, r+k)
		p.rows += int64(k)
		r += k
		if p.rows == step {
			w.closePane(t, now)
		}
	}
}

func (w *worker) newTracker(key mvKey, pl *plan, now time.Time) *tracker {
	t := &tracker{key: key, plan: pl}
	if pl.profile == nil {
		// Validated by Learn; the version is the one really served.
		t.builder, _ = NewProfileBuilder(key.Model, key.Version, pl.features, pl.popts...)
		return t
	}
	n := w.cfg.window.panes()
	t.panes = make([]pane, n)
	for i := range t.panes {
		t.panes[i].feats = newStates(pl.profile)
	}
	t.scratch = newStates(pl.profile)
	t.hyst = make([]hysteresis, len(pl.profile.Features))
	t.checks = map[string]*hysteresis{}
	if c := pl.profile.Multivariate; c != nil {
		t.rowBuf, t.zBuf = make([]float64, len(c.Features)), make([]float64, len(c.Features))
	}
	t.panes[0].start, t.panes[0].end = w.paneBounds(now)
	return t
}

func newStates(p *Profile) []FeatureState {
	s := make([]FeatureState, len(p.Features))
	for i := range p.Features {
		s[i] = newFeatureState(&p.Features[i])
	}
	return s
}

// paneBounds is the pane that holds now: for time windows aligned to
// multiples of the step from the monitor's start; count panes start now and
// end when full.
func (w *worker) paneBounds(now time.Time) (start, end time.Time) {
	if !w.cfg.window.timed() {
		return now, time.Time{}
	}
	step := w.cfg.window.durStep
	start = w.epoch.Add(now.Sub(w.epoch) / step * step)
	return start, start.Add(step)
}

// add bins rows [from, to) of a record into a pane, and adds each row's
// reconstruction error to the pane's multivariate state.
func (w *worker) add(t *tracker, p *pane, rec *record, from, to int) {
	pr := t.plan.profile
	for i := range pr.Features {
		fp, s, st := &pr.Features[i], t.plan.slot[i], &p.feats[i]
		base := s * rec.rows
		if fp.Kind == Numerical {
			st.addNumbers(t.plan.bins[i], rec.num[base+from:base+to], w.cfg.eval.exactLimit)
		} else {
			st.addIndices(rec.cat[base+from : base+to])
		}
	}
	if c := pr.Multivariate; c != nil {
		// The multivariate reference's features are the numerical ones in
		// order, which are the record's numerical slots in order.
		for r := from; r < to; r++ {
			for j := range t.rowBuf {
				t.rowBuf[j] = rec.num[j*rec.rows+r]
			}
			p.mv.add(c.reconstructionError(t.rowBuf, t.zBuf))
		}
	}
}

// learn feeds a record to the profile being learned and, once it has its
// rows, starts monitoring against the new profile.
func (w *worker) learn(t *tracker, rec *record, now time.Time) {
	pl := t.plan
	n := min(rec.rows, pl.learn-t.learned)
	for i, f := range pl.features {
		base := pl.slot[i] * rec.rows
		for r := range n {
			if f.Kind == Numerical {
				t.builder.addNumber(i, rec.num[base+r])
			} else {
				t.builder.addString(i, rec.str[base+r]) //nolint:errcheck // categorical: cannot fail
			}
		}
	}
	t.learned += n
	if t.learned < pl.learn {
		return
	}
	p, err := t.builder.Profile()
	if err != nil {
		// Say, a feature had no finite value at all: learn afresh.
		t.builder, _ = NewProfileBuilder(t.key.Model, t.key.Version, pl.features, pl.popts...)
		t.learned = 0
		return
	}
	learned, err := newPlan(t.key, p, nil, 0, nil)
	if err != nil {
		return
	}
	w.m.setPlan(learned)
	next := w.newTracker(t.key, learned, now)
	next.windows = t.windows
	w.trackers[t.key] = next
}

// roll closes the time panes that ended by now. After a whole window of
// empty panes it jumps to now instead of closing every pane of a long idle
// stretch one by one.
func (w *worker) roll(t *tracker, now time.Time) {
	if t.builder != nil || !w.cfg.window.timed() {
		return
	}
	for i := 0; !now.Before(t.panes[t.cur].end); i++ {
		if i >= len(t.panes) && t.panes[t.cur].rows == 0 {
			for j := range t.panes {
				resetPane(&t.panes[j])
			}
			t.filled, t.cur = 0, 0
			t.panes[0].start, t.panes[0].end = w.paneBounds(now)
			return
		}
		w.closePane(t, t.panes[t.cur].end)
	}
}

func resetPane(p *pane) {
	for i := range p.feats {
		p.feats[i].reset()
	}
	p.mv = MultivariateState{}
	p.rows = 0
}

// closePane ends the current pane at end, evaluates the window when it has
// all its panes and some rows, and starts the next pane.
func (w *worker) closePane(t *tracker, end time.Time) {
	t.panes[t.cur].end = end
	t.filled = min(t.filled+1, len(t.panes))
	if t.filled == len(t.panes) {
		var rows int64
		for i := range t.panes {
			rows += t.panes[i].rows
		}
		if rows > 0 {
			w.evaluate(t, rows)
		}
	}
	t.cur = (t.cur + 1) % len(t.panes)
	next := &t.panes[t.cur]
	resetPane(next)
	next.start = end
	if w.cfg.window.timed() {
		next.end = end.Add(w.cfg.window.durStep)
	}
}

// merged merges panes oldest first into the tracker's scratch states: the
// last n completed panes and, with current, the pane being filled.
func (w *worker) merged(t *tracker, n int, current bool) []FeatureState {
	for i := range t.scratch {
		t.scratch[i].reset()
	}
	t.mv = MultivariateState{}
	limit := w.cfg.eval.exactLimit
	k := len(t.panes)
	add := func(p *pane) {
		for i := range t.scratch {
			t.scratch[i].merge(&p.feats[i], limit)
		}
		t.mv.merge(&p.mv)
	}
	last := t.cur // the newest completed pane, when not current
	if current {
		last = (t.cur - 1 + k) % k
	}
	for j := n - 1; j >= 0; j-- {
		add(&t.panes[(last-j+k)%k])
	}
	if current {
		add(&t.panes[t.cur])
	}
	return t.scratch
}

func (w *worker) evaluate(t *tracker, rows int64) {
	k := len(t.panes)
	states := w.merged(t, k, false)
	features, clean := evaluate(t.plan.profile, states, &w.cfg.eval)
	t.windows++
	res := Result{
		Model: t.key.Model, Version: t.key.Version, Profile: t.plan.print,
		Window: Window{
			Index: t.windows, Rows: rows,
			Start: t.panes[(t.cur+1)%k].start, End: t.panes[t.cur].end,
		},
		Correction: w.cfg.eval.correction,
		Features:   features,
	}
	var raised, cleared []string
	for i := range res.Features {
		f, h := &res.Features[i], &t.hyst[i]
		switch {
		case f.Status == StatusInsufficient:
		case !h.alarmed && f.Drifted:
			if h.up++; h.up >= w.cfg.raiseAfter {
				*h = hysteresis{alarmed: true}
				raised = append(raised, f.Name)
			}
		case !h.alarmed:
			h.up = 0
		case clean[i]:
			if h.down++; h.down >= w.cfg.clearAfter {
				*h = hysteresis{}
				cleared = append(cleared, f.Name)
			}
		default:
			h.down = 0
		}
		f.Alarmed = h.alarmed
		if f.Alarmed {
			f.Status = StatusAlarm
			res.Alarmed = append(res.Alarmed, f.Name)
		}
		if f.Drifted {
			res.Drifted = append(res.Drifted, f.Name)
		}
	}
	var mvClean bool
	if c := t.plan.profile.Multivariate; c != nil {
		res.Multivariate, mvClean = evaluateMultivariate(c, &t.mv, &w.cfg.eval)
	}
	checkRaised, checkCleared := w.judgeChecks(t, &res, mvClean)
	var alert *Alert
	if len(raised) > 0 || len(cleared) > 0 || len(checkRaised) > 0 || len(checkCleared) > 0 {
		kind := AlertCleared
		if len(raised) > 0 || len(checkRaised) > 0 {
			kind = AlertRaised
		}
		alert = &Alert{
			Kind: kind, Model: res.Model, Version: res.Version, Time: res.Window.End,
			Raised: raised, Cleared: cleared, Alarmed: res.Alarmed, Reason: res.Reason(), Result: res,
			CheckRaised: checkRaised, CheckCleared: checkCleared, Checks: res.Checks,
		}
	}
	w.m.pub.add(res, alert)
	if alert != nil {
		for _, f := range w.cfg.alerts {
			w.call(f, *alert)
		}
	}
}

// judgeChecks runs the data-quality checks and the multivariate check of
// a window through their hysteresis, as the features' drift is, and lists
// those in alarm in the result.
func (w *worker) judgeChecks(t *tracker, res *Result, mvClean bool) (raised, cleared []string) {
	judge := func(name string, judged, breach, clean bool, reason string) {
		h := t.checks[name]
		if h == nil {
			h = &hysteresis{}
			t.checks[name] = h
		}
		switch {
		case !judged:
		case !h.alarmed && breach:
			if h.up++; h.up >= w.cfg.raiseAfter {
				*h = hysteresis{alarmed: true}
				raised = append(raised, name)
			}
		case !h.alarmed:
			h.up = 0
		case clean:
			if h.down++; h.down >= w.cfg.clearAfter {
				*h = hysteresis{}
				cleared = append(cleared, name)
			}
		default:
			h.down = 0
		}
		if h.alarmed {
			res.Checks = append(res.Checks, name)
			res.checkReasons = append(res.checkReasons, reason)
		}
	}
	for i := range res.Features {
		f := &res.Features[i]
		if f.Quality == nil {
			continue
		}
		judged := f.Quality.Values >= w.cfg.eval.minSamples
		for _, r := range f.Quality.Checks {
			judge(checkName(f.Name, r.Check), judged, r.Breach, !r.Breach, r.reason(f.Name))
		}
	}
	if m := res.Multivariate; m != nil {
		judge(CheckMultivariate, !m.Insufficient, m.Drifted, mvClean,
			"multivariate: reconstruction error "+fmtG(m.Error)+" outside ["+fmtG(m.Lower)+", "+fmtG(m.Upper)+"]")
		m.Alarmed = slices.Contains(res.Checks, CheckMultivariate)
	}
	return raised, cleared
}

func (w *worker) call(f func(Alert), a Alert) {
	defer func() {
		if recover() != nil {
			w.m.n.panics.Add(1)
		}
	}()
	f(a)
}

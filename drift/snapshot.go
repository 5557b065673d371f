package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/servekit/servekit/serving"
)

// SnapshotFormat names the snapshot's JSON format and its version.
const SnapshotFormat = "servekit.drift.snapshot/v1"

// Snapshot is a replica's window state for one model version: per
// feature, the fixed bins (and the values, while few) that the statistics
// need. Snapshots of replicas that share a profile merge exactly
// (MergeSnapshots), and evaluating the merge (Evaluate) gives the same
// statistics as one process that saw all the traffic: counts add, and a
// merged window keeps its values only when its total is within the exact
// limit, as a single window would. It travels as JSON (encoding/json).
type Snapshot struct {
	Format  string `json:"format"`
	Model   string `json:"model"`
	Version string `json:"version"`
	// Profile is the reference's Fingerprint; only equal ones merge.
	Profile    string         `json:"profile"`
	ExactLimit int            `json:"exact_limit"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Rows       int64          `json:"rows"`
	Features   []FeatureState `json:"features"`
	// Multivariate is the window's multivariate state, when the profile
	// has a multivariate reference.
	Multivariate *MultivariateState `json:"multivariate,omitempty"`
}

// Snapshot exports the state of the window a model version is filling:
// the panes of a sliding window that will still be in it, and the pane
// being filled. It waits for the worker to take in what is queued.
func (m *Monitor) Snapshot(ctx context.Context, model, version string) (*Snapshot, error) {
	var snap *Snapshot
	err := m.do(ctx, func() {
		w := m.w
		t := w.trackers[mvKey{Model: model, Version: version}]
		if t == nil || t.builder != nil {
			return
		}
		k := len(t.panes)
		prev := min(t.filled, k-1)
		states := w.merged(t, prev, true)
		snap = &Snapshot{
			Format: SnapshotFormat, Model: model, Version: version, Profile: t.plan.print,
			ExactLimit: w.cfg.eval.exactLimit, End: w.cfg.clock.Now(),
			Start:    t.panes[(t.cur-prev+k)%k].start,
			Features: make([]FeatureState, len(states)),
		}
		for j := 0; j <= prev; j++ {
			snap.Rows += t.panes[(t.cur-j+k)%k].rows
		}
		for i := range states {
			snap.Features[i] = states[i].clone()
		}
		if t.plan.profile.Multivariate != nil {
			mv := t.mv
			snap.Multivariate = &mv
		}
	})
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, serving.Errorf(serving.NotFound, "drift: no window for %s: no profile, or still learning: %w",
			modelVersion(model, version), serving.ErrNotFound)
	}
	return snap, nil
}

// DecodeSnapshot reads a snapshot from JSON and checks its format.
func DecodeSnapshot(r io.Reader) (*Snapshot, error) {
	var s Snapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("drift: decode snapshot: %w", err)
	}
	if s.Format != SnapshotFormat {
		return nil, fmt.Errorf("drift: unsupported snapshot format %q, want %q", s.Format, SnapshotFormat)
	}
	return &s, nil
}

// MergeSnapshots merges the snapshots of replicas into one, as if one
// process had seen their traffic. They must be of the same model version,
// profile, features and exact limit.
func MergeSnapshots(snaps ...*Snapshot) (*Snapshot, error) {
	if len(snaps) == 0 {
		return nil, errors.New("drift: no snapshots to merge")
	}
	first := snaps[0]
	out := *first
	out.Features = make([]FeatureState, len(first.Features))
	for i := range first.Features {
		out.Features[i] = first.Features[i].clone()
	}
	if first.Multivariate != nil {
		mv := *first.Multivariate
		out.Multivariate = &mv
	}
	for _, s := range snaps[1:] {
		if s.Model != first.Model || s.Version != first.Version || s.Profile != first.Profile ||
			s.ExactLimit != first.ExactLimit || len(s.Features) != len(first.Features) {
			return nil, fmt.Errorf("drift: cannot merge a snapshot of %s (profile %s, exact limit %d) into one of %s (profile %s, exact limit %d)",
				modelVersion(s.Model, s.Version), s.Profile, s.ExactLimit,
				modelVersion(first.Model, first.Version), first.Profile, first.ExactLimit)
		}
		for i := range s.Features {
			a, b := &out.Features[i], &s.Features[i]
			if a.Name != b.Name || len(a.Counts) != len(b.Counts) || len(a.Sums) != len(b.Sums) {
				return nil, fmt.Errorf("drift: snapshots disagree on feature %d (%q, %q)", i, a.Name, b.Name)
			}
			a.merge(b, out.ExactLimit)
		}
		if (s.Multivariate == nil) != (out.Multivariate == nil) {
			return nil, errors.New("drift: snapshots disagree on the multivariate state")
		}
		if s.Multivariate != nil {
			out.Multivariate.merge(s.Multivariate)
		}
		out.Rows += s.Rows
		if s.Start.Before(out.Start) {
			out.Start = s.Start
		}
		if s.End.After(out.End) {
			out.End = s.End
		}
	}
	return &out, nil
}

// Evaluate computes the statistics and verdicts of a snapshot's window
// against its profile, with the thresholds, statistics, correction and
// minimum sample size of opts (the options of NewMonitor that concern
// evaluation; others are ignored). It keeps no state, so no hysteresis
// applies: Alarmed lists the features that drifted in this window, and
// Checks the data-quality and multivariate checks that breached.
func Evaluate(p *Profile, s *Snapshot, opts ...Option) (*Result, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if s.Profile != p.Fingerprint() || len(s.Features) != len(p.Features) {
		return nil, fmt.Errorf("drift: the snapshot of %s was not made with profile %s (fingerprint %s, snapshot has %s)",
			modelVersion(s.Model, s.Version), p, p.Fingerprint(), s.Profile)
	}
	for i := range s.Features {
		st, fp := &s.Features[i], &p.Features[i]
		if st.Name != fp.Name || len(st.Counts) != len(fp.Counts) || (fp.Kind == Numerical) != (len(st.Sums) == len(fp.Counts)) {
			return nil, fmt.Errorf("drift: snapshot feature %d (%q) does not fit the profile's %q", i, st.Name, fp.Name)
		}
		var n int64
		for _, c := range st.Counts {
			n += c
		}
		if n != st.N || st.N < 0 || (!st.Overflow && fp.Kind == Numerical && int64(len(st.Values)) != st.N) {
			return nil, fmt.Errorf("drift: snapshot feature %q: counts, n and values disagree", st.Name)
		}
		for _, v := range append(st.Values[:len(st.Values):len(st.Values)], append(st.Sums, st.Min, st.Max, st.Sum)...) {
			if !finite(v) {
				return nil, fmt.Errorf("drift: snapshot feature %q: %v is not a finite number", st.Name, v)
			}
		}
	}
	ev := cfg.eval
	ev.exactLimit = s.ExactLimit
	features, _ := evaluate(p, s.Features, &ev)
	res := &Result{
		Model: s.Model, Version: s.Version, Profile: s.Profile, Correction: ev.correction,
		Window:   Window{Start: s.Start, End: s.End, Rows: s.Rows},
		Features: features,
	}
	for i := range features {
		if f := &features[i]; f.Drifted {
			f.Alarmed = true
			res.Drifted = append(res.Drifted, f.Name)
		}
	}
	res.Alarmed = res.Drifted
	for i := range features {
		f := &features[i]
		for _, r := range f.Quality.Checks {
			if r.Breach {
				res.Checks = append(res.Checks, checkName(f.Name, r.Check))
				res.checkReasons = append(res.checkReasons, r.reason(f.Name))
			}
		}
	}
	if c := p.Multivariate; c != nil {
		if s.Multivariate == nil {
			return nil, fmt.Errorf("drift: the snapshot of %s has no multivariate state for its profile's multivariate reference", modelVersion(s.Model, s.Version))
		}
		res.Multivariate, _ = evaluateMultivariate(c, s.Multivariate, &ev)
		if m := res.Multivariate; m.Drifted {
			m.Alarmed = true
			res.Checks = append(res.Checks, CheckMultivariate)
		}
	}
	return res, nil
}

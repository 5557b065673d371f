package quality

import (
	"context"
	"time"

	"github.com/servekit/servekit/serving"
)

// Basis says how Compare measures two versions.
type Basis string

// The bases of a comparison.
const (
	// Paired compares realized metrics on the requests both versions
	// answered that have a label: the same rows, so neither sticky routing
	// nor a changing mix of traffic can bias it. It needs both versions to
	// see the same request ids, as a shadow's mirrored requests do.
	Paired Basis = "paired"
	// Realized compares each version's realized metric on its own labelled
	// predictions.
	Realized Basis = "realized"
	// Estimated compares each version's CBPE estimate on its own
	// predictions, without labels; each needs a reference.
	Estimated Basis = "estimated"
)

// Comparison is a metric of two versions of a model over the same span.
type Comparison struct {
	Metric Metric `json:"metric"`
	Basis  Basis  `json:"basis"`
	// Baseline and Candidate are the values; N the rows they rest on (the
	// pairs, or the fewer of the two versions' rows).
	Baseline  float64 `json:"baseline"`
	Candidate float64 `json:"candidate"`
	N         int64   `json:"n"`
}

// Compare measures metric for versions baseline and candidate of a model
// over the predictions they answered since since that the monitor still
// remembers. N is 0 while the metric is undefined on either side (no
// rows yet, or one class only for AUC). It fails with an InvalidArgument
// error for a metric the task does not compute, or Estimated without both
// references. It runs on
// the worker, scanning what the model remembers: size the memory to the
// span a guard judges.
func (m *Monitor) Compare(ctx context.Context, model, baseline, candidate string, metric Metric, basis Basis, since time.Time) (Comparison, error) {
	c := Comparison{Metric: metric, Basis: basis}
	pl := m.lookup(model)
	if pl == nil {
		return c, serving.Errorf(serving.NotFound, "quality: model %q is not watched", model)
	}
	if !contains(pl.task.metrics(), metric) {
		return c, serving.Errorf(serving.InvalidArgument, "quality: a %s task has no metric %q", pl.task.Kind, metric)
	}
	var refs [2]*Reference
	switch basis {
	case Paired, Realized:
	case Estimated:
		if !contains(pl.task.estimated(), metric) {
			return c, serving.Errorf(serving.InvalidArgument, "quality: %q is not estimated without labels", metric)
		}
		for i, v := range []string{baseline, candidate} {
			if refs[i] = pl.reference(v); refs[i] == nil {
				return c, serving.Errorf(serving.InvalidArgument, "quality: %s has no reference to estimate with", modelVersion(model, v))
			}
		}
	default:
		return c, serving.Errorf(serving.InvalidArgument, "quality: unknown basis %q", basis)
	}
	var vals [2]values
	var ns [2]int64
	err := m.do(ctx, func() {
		ms := m.w.models[model]
		if ms == nil {
			return
		}
		ids := [2]int{-1, -1}
		for i, v := range []string{baseline, candidate} {
			if tr := ms.byVersion[v]; tr != nil {
				ids[i] = int(tr.id)
			}
		}
		scores, labels := collect(ms.ring, ids, since.UnixNano(), basis)
		for i := range 2 {
			switch basis {
			case Estimated:
				vals[i], _ = estimate(&refs[i].Task, refs[i].Calibrators, scores[i])
				ns[i] = int64(len(scores[i]) / ms.ring.width)
			default:
				vals[i] = realized(&pl.task, scores[i], labels[i])
				ns[i] = int64(len(labels[i]))
			}
		}
	})
	if err != nil {
		return c, err
	}
	b, okb := vals[0].get(metric)
	d, okd := vals[1].get(metric)
	if okb && okd {
		c.Baseline, c.Candidate, c.N = b, d, min(ns[0], ns[1])
	}
	return c, nil
}

func contains(ms []Metric, m Metric) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// collect gathers, for the trackers ids[0] and ids[1], the scores (and the
// labels) of the predictions at or after since: all of them for
// Estimated, the labelled ones for Realized, and for Paired the labelled
// ones whose id the other version answered too (the newest of each).
func collect(r *ring, ids [2]int, since int64, basis Basis) (scores, labels [2][]float64) {
	var pairs map[uint64][2]uint64
	if basis == Paired {
		pairs = map[uint64][2]uint64{}
	}
	for seq := r.head; seq < r.next; seq++ {
		s, sc := r.at(seq)
		if s.at < since {
			continue
		}
		side := -1
		for i, id := range ids {
			if id >= 0 && int(s.ver) == id {
				side = i
			}
		}
		switch {
		case side < 0:
		case basis == Estimated:
			scores[side] = append(scores[side], sc...)
		case s.lt == 0:
		case basis == Realized:
			scores[side] = append(scores[side], sc...)
			labels[side] = append(labels[side], s.label)
		case s.key != 0:
			p := pairs[s.key]
			p[side] = seq
			pairs[s.key] = p
		}
	}
	for _, p := range pairs {
		if p[0] == 0 || p[1] == 0 {
			continue
		}
		for side, seq := range p {
			s, sc := r.at(seq)
			scores[side] = append(scores[side], sc...)
			labels[side] = append(labels[side], s.label)
		}
	}
	return scores, labels
}

// CompareFunc returns Compare for one metric and basis in the shape of
// rollout.QualityFunc, so a rollout plan can judge its canary without
// either package importing the other:
//
//	rollout.MinQuality("AUC", qm.CompareFunc(quality.AUC, quality.Paired), 0.02, 300)
func (m *Monitor) CompareFunc(metric Metric, basis Basis) func(ctx context.Context, model, stable, canary string, since time.Time) (float64, float64, int64, error) {
	return func(ctx context.Context, model, stable, canary string, since time.Time) (float64, float64, int64, error) {
		c, err := m.Compare(ctx, model, stable, canary, metric, basis, since)
		return c.Baseline, c.Candidate, c.N, err
	}
}

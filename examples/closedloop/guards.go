package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/rollout"
)

// The canary plan's guards, asked in this order at every check (package
// rollout: the first that fails rolls back; the first inconclusive one
// holds the step and stops the check):
//
//  1. shadowSane: the canary's shadow answers are finite and it fails no
//     more than the stable on the same requests. First, because it judges
//     pairs mirrored since before the plan began, so it can roll a broken
//     canary back at the very first check, before MinRequests has enough
//     canary traffic to let the others speak.
//  2. MinRequests: each step judged on at least minRequests canary
//     requests of its own.
//  3. MaxErrorRate(1 %) and MaxP99: the service-level guards, on the
//     canary's own traffic. The p99 budget is the dashboard's alert
//     threshold (250 ms): a 9-parameter model answers in microseconds, so
//     only queueing, a stall or a broken node gets near it.
//  4. MinAgreement on the shadow comparison, as a sanity floor, not a
//     quality bar. After a drift the two versions are meant to disagree:
//     the old one misses the new fraud pattern. At the decision threshold
//     (a score ≥ 0.5 flags the transaction) they agree on about 78 % of
//     the drifted traffic here (clearly legitimate payments, the old
//     pattern). An inverted model lands near 0 %, random scores near
//     50 %, so a floor of 60 % catches those and lets a real improvement
//     through. It cannot catch everything: a model that never flags
//     agrees wherever v1 does not flag, 76 % of this traffic. Agreement
//     measures difference, not quality; the AUC guard measures quality.
//  5. The drift monitor's view of the canary (package drift's one-line
//     guard): its own traffic must not drift from the profile it was
//     trained on.
//  6. aucGuard, the custom guard this story is about: agreement cannot
//     say which of two disagreeing models is right; the labels can. On
//     the transactions both versions answered (the shadow's pairs, logged
//     by each version's predlog), once their chargebacks are in, the
//     canary's AUC must not be below the stable's by more than a margin.
//
// shadowSane and the drift guard are rollout.GuardFuncs, aucGuard a type
// with a Check method: a Guard is any function of the plan's Snapshot, so
// it can read the shadow's numbers, another component (the drift monitor)
// or data outside the server (the logged traffic and the label store).
func guards(o *options, mon *drift.Monitor, auc *aucGuard) []rollout.Guard {
	return []rollout.Guard{
		rollout.GuardFunc(shadowSane),
		rollout.MinRequests(o.minRequests),
		rollout.MaxErrorRate(0.01),
		rollout.MaxP99(o.maxP99),
		rollout.MinAgreement(o.minAgreement, o.shadowPairs),
		rollout.GuardFunc(func(_ context.Context, s rollout.Snapshot) error {
			return mon.Status(s.Model, s.Canary.Version).Err()
		}),
		auc,
	}
}

// shadowSane fails when the canary answered NaN or ±Inf where the stable
// answered a number, or failed requests the stable answered: what no
// difference between two sound models explains.
func shadowSane(_ context.Context, s rollout.Snapshot) error {
	sh := s.Shadow
	if sh == nil || sh.Challenger != s.Canary.Version {
		return fmt.Errorf("%w: no shadow of version %s", rollout.ErrInconclusive, s.Canary.Version)
	}
	for _, out := range sh.Outputs {
		if out.NonFinite > 0 {
			return fmt.Errorf("canary v%s answered NaN or ±Inf for %d of %d %q values the stable answered finitely (shadow)",
				s.Canary.Version, out.NonFinite, out.Elements+out.NonFinite, out.Name)
		}
	}
	if sh.ErrorRateDiff > 0.01 {
		return fmt.Errorf("canary v%s fails %.1f %% more of the same requests than the stable (shadow)", s.Canary.Version, 100*sh.ErrorRateDiff)
	}
	return nil
}

// aucGuard judges the canary by the ground truth: on the requests both
// the canary and the stable answered since the shadow began (the same
// transactions, so the comparison is paired and sticky routing cannot
// bias it), whose labels have arrived, the canary's AUC must be at least
// the stable's minus margin. It is inconclusive until minLabelled such
// transactions are in, with at least a tenth of them of each class. It
// keeps its last verdict's figures for the timeline.
type aucGuard struct {
	hist        *history
	since       time.Time
	margin      float64
	minLabelled int
	mu          sync.Mutex
	last        aucFigures // guarded by mu
}

// aucFigures are one verdict's numbers.
type aucFigures struct {
	N, Frauds      int
	Stable, Canary float64
}

func (g *aucGuard) figures() aucFigures {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

func (g *aucGuard) Check(_ context.Context, s rollout.Snapshot) error {
	if err := g.hist.refresh(); err != nil {
		return fmt.Errorf("%w: logged traffic: %v", rollout.ErrInconclusive, err)
	}
	rows := g.hist.labelled(func(r loggedRow) bool {
		return !r.At.Before(g.since) && (r.Version == s.Canary.Version || r.Version == s.Stable.Version)
	})
	// Pair each transaction's two scores.
	type pair struct {
		score [2]float64 // stable, canary
		has   [2]bool
		fraud bool
	}
	pairs := map[string]*pair{}
	for _, r := range rows {
		p := pairs[r.ID]
		if p == nil {
			p = &pair{fraud: r.Fraud}
			pairs[r.ID] = p
		}
		side := 0
		if r.Version == s.Canary.Version {
			side = 1
		}
		p.score[side], p.has[side] = float64(r.Score), true
	}
	var st, ca []float64
	var ys []bool
	var f aucFigures
	nonFinite := 0
	for _, p := range pairs {
		if !p.has[0] || !p.has[1] {
			continue
		}
		if math.IsNaN(p.score[1]) || math.IsInf(p.score[1], 0) {
			nonFinite++
		}
		st, ca, ys = append(st, p.score[0]), append(ca, p.score[1]), append(ys, p.fraud)
		if p.fraud {
			f.Frauds++
		}
	}
	f.N = len(ys)
	if nonFinite > 0 {
		return fmt.Errorf("canary v%s scored %d of %d labelled transactions NaN or ±Inf", s.Canary.Version, nonFinite, f.N)
	}
	if f.N < g.minLabelled || f.Frauds < f.N/10 || f.N-f.Frauds < f.N/10 {
		return fmt.Errorf("%w: %d labelled transactions answered by both versions (%d frauds), want %d with a tenth of each class",
			rollout.ErrInconclusive, f.N, f.Frauds, g.minLabelled)
	}
	f.Stable, f.Canary = auc(st, ys), auc(ca, ys)
	g.mu.Lock()
	g.last = f
	g.mu.Unlock()
	if f.Canary < f.Stable-g.margin {
		return fmt.Errorf("canary v%s AUC %.3f is below stable v%s's %.3f by more than %.2f on %d labelled transactions",
			s.Canary.Version, f.Canary, s.Stable.Version, f.Stable, g.margin, f.N)
	}
	return nil
}

package main

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/quality"
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
//  6. The AUC of the canary against the stable on the ground truth
//     (rollout.MinQuality over package quality's paired comparison):
//     agreement cannot say which of two disagreeing models is right; the
//     labels can. On the transactions both versions answered since the
//     plan began (the canary its own and the stable's mirrored ones, so
//     the comparison is paired and sticky routing cannot bias it), once
//     their chargebacks are in, the canary's AUC must not be below the
//     stable's by more than a margin. It waits for minLabelled such
//     transactions. Neither rollout nor quality imports the other:
//     CompareFunc has the shape of rollout.QualityFunc.
//
// shadowSane and the drift guard are rollout.GuardFuncs: a Guard is any
// function of the plan's Snapshot, so it can read the shadow's numbers
// or another component (the drift monitor, the quality monitor).
func guards(o *options, mon *drift.Monitor, qm *quality.Monitor) []rollout.Guard {
	return []rollout.Guard{
		rollout.GuardFunc(shadowSane),
		rollout.MinRequests(o.minRequests),
		rollout.MaxErrorRate(0.01),
		rollout.MaxP99(o.maxP99),
		rollout.MinAgreement(o.minAgreement, o.shadowPairs),
		rollout.GuardFunc(func(_ context.Context, s rollout.Snapshot) error {
			return mon.Status(s.Model, s.Canary.Version).Err()
		}),
		rollout.MinQuality("AUC", qm.CompareFunc(quality.AUC, quality.Paired), o.aucMargin, int64(o.minLabelled)),
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

package rollout

import (
	"context"
	"fmt"
	"time"
)

// QualityFunc measures one quality metric of a plan's stable and canary
// versions over what they answered since a time (the plan's start): the
// two values, and n, how many predictions they rest on (labelled ones for
// a realized metric; 0 while there is nothing to compare). Package
// quality's Monitor.CompareFunc returns one — paired on the labelled
// requests both versions answered, realized on each one's own, or
// estimated without labels — and rollout imports no monitor: any function
// of this shape will do.
type QualityFunc func(ctx context.Context, model, stable, canary string, since time.Time) (stableValue, canaryValue float64, n int64, err error)

// MinQuality fails when the canary's metric (named name in the reason),
// one where higher is better such as AUC, accuracy or F1, is below the
// stable's by more than margin, over what both answered since the plan
// started. It is inconclusive until the values rest on minN predictions,
// and when f fails (a monitor that did not answer must not roll back a
// good canary):
//
//	rollout.MinQuality("AUC", qm.CompareFunc(quality.AUC, quality.Paired), 0.02, 300)
func MinQuality(name string, f QualityFunc, margin float64, minN int64) Guard {
	return qualityGuard(name, f, margin, minN, false)
}

// MaxLoss is MinQuality for a metric where lower is better (log loss,
// Brier score, MAE, RMSE): it fails when the canary's value is above the
// stable's by more than margin.
func MaxLoss(name string, f QualityFunc, margin float64, minN int64) Guard {
	return qualityGuard(name, f, margin, minN, true)
}

func qualityGuard(name string, f QualityFunc, margin float64, minN int64, lowerBetter bool) Guard {
	return GuardFunc(func(ctx context.Context, s Snapshot) error {
		st, ca, n, err := f(ctx, s.Model, s.Stable.Version, s.Canary.Version, s.PlanStarted)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %s of canary %q: %v", ErrInconclusive, name, s.Canary.Version, err)
		case n < minN:
			return fmt.Errorf("%w: %s of canary %q rests on %d of the %d predictions needed to judge", ErrInconclusive, name, s.Canary.Version, n, minN)
		case !lowerBetter && ca < st-margin:
			return fmt.Errorf("canary %q %s %.4g is below stable %q's %.4g by more than %.4g (%d predictions)", s.Canary.Version, name, ca, s.Stable.Version, st, margin, n)
		case lowerBetter && ca > st+margin:
			return fmt.Errorf("canary %q %s %.4g is above stable %q's %.4g by more than %.4g (%d predictions)", s.Canary.Version, name, ca, s.Stable.Version, st, margin, n)
		}
		return nil
	})
}

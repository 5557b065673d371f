package batch

import (
	"testing"
	"time"
)

// drive feeds the cost model a run every millisecond of clock time,
// answering rows at the rate of the mode it is in (rows/s), for n windows.
func drive(c *costModel, now *time.Time, rates [2]float64, windows int) (joining int) {
	const step = time.Millisecond
	for range windows {
		rows := int64(rates[mode(c.joins)] * step.Seconds())
		if c.joins {
			joining++
		}
		for end := now.Add(minWindow); now.Before(end); {
			*now = now.Add(step)
			c.answered(*now, rows, step)
		}
	}
	return joining
}

func TestCostModelKeepsTheBetterMode(t *testing.T) {
	for _, tc := range []struct {
		name       string
		alone, joi float64 // rows/s each mode answers
		wantJoin   bool
		maxOther   float64 // most share of windows spent in the other mode
	}{
		{"joining twice as fast", 100_000, 200_000, true, 0.04},
		{"alone a third faster", 130_000, 100_000, false, 0.06},
		{"alone twice as fast", 200_000, 100_000, false, 0.04},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCostModel()
			now := time.Unix(0, 0)
			drive(&c, &now, [2]float64{tc.alone, tc.joi}, 50) // settle
			joining := drive(&c, &now, [2]float64{tc.alone, tc.joi}, 1000)
			if c.best != tc.wantJoin {
				t.Errorf("best = joining %v, want %v (rates %v)", c.best, tc.wantJoin, c.rate)
			}
			share := float64(joining) / 1000
			if !tc.wantJoin {
				share = 1 - share
			}
			// Explorations cost about 1% of the rows.
			if other := 1 - share; other > tc.maxOther {
				t.Errorf("%.1f%% of the windows in the worse mode, want at most %.0f%%", 100*other, 100*tc.maxOther)
			}
		})
	}
}

func TestCostModelFollowsAChange(t *testing.T) {
	// Joining wins, then (the load changed) running alone wins clearly:
	// the model moves over within a few explorations, even after the
	// waits between them grew.
	c := newCostModel()
	now := time.Unix(0, 0)
	drive(&c, &now, [2]float64{100_000, 300_000}, 2000)
	if !c.best {
		t.Fatalf("not joining when joining answers three times as many")
	}
	drive(&c, &now, [2]float64{300_000, 100_000}, 4*exploreMax)
	if c.best {
		t.Errorf("still joining %d windows after running alone became three times as fast (rates %v)", 4*exploreMax, c.rate)
	}
}

func TestCostModelTieStaysJoining(t *testing.T) {
	// Below capacity both modes answer what arrives.
	c := newCostModel()
	now := time.Unix(0, 0)
	drive(&c, &now, [2]float64{50_000, 50_000}, 500)
	if !c.best {
		t.Errorf("left joining on a tie (rates %v)", c.rate)
	}
}

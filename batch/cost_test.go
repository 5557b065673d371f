package batch

import (
	"math/rand/v2"
	"testing"
	"time"
)

func noCPU() time.Duration { return 0 }

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
			c.answered(*now, rows, 1, step, true)
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
			c.cpu = noCPU
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
	c.cpu = noCPU
	now := time.Unix(0, 0)
	drive(&c, &now, [2]float64{100_000, 300_000}, 2000)
	if !c.best {
		t.Fatalf("not joining when joining answers three times as many")
	}
	windows := int(4 * exploreMax / minWindow)
	drive(&c, &now, [2]float64{300_000, 100_000}, windows)
	if c.best {
		t.Errorf("still joining %d windows after running alone became three times as fast (rates %v)", windows, c.rate)
	}
}

func TestCostModelTieStaysJoining(t *testing.T) {
	// Below capacity both modes answer what arrives.
	c := newCostModel()
	c.cpu = noCPU
	now := time.Unix(0, 0)
	drive(&c, &now, [2]float64{50_000, 50_000}, 500)
	if !c.best {
		t.Errorf("left joining on a tie (rates %v)", c.rate)
	}
}

// driveNoisy is drive on a shared machine: the rate of each mode is
// multiplied by a factor drawn afresh every 20 ms, between 1-noise and
// 1+noise, and joined runs last joinedRun (a model that does not batch:
// long runs, so windows of 16 runs are long). A row costs cpu[mode] of CPU
// time (0: the model cannot tell). It returns the time spent joining and
// in all.
func driveNoisy(c *costModel, now *time.Time, rng *rand.Rand, rates [2]float64, cpu [2]time.Duration, noise float64, joinedRun, total time.Duration) (joining, all time.Duration) {
	used := c.cpu()
	c.cpu = func() time.Duration { return used }
	factor, next := 1.0, *now
	for end := now.Add(total); now.Before(end); {
		if !now.Before(next) {
			factor, next = 1-noise+2*noise*rng.Float64(), now.Add(minWindow)
		}
		step := time.Millisecond
		if c.joins {
			step = joinedRun
			joining += step
		}
		all += step
		*now = now.Add(step)
		rows := int64(rates[mode(c.joins)] * factor * step.Seconds())
		used += time.Duration(rows) * cpu[mode(c.joins)]
		c.answered(*now, rows, 1, step, true)
	}
	return joining, all
}

func TestCostModelNoisyMachine(t *testing.T) {
	// On a machine shared with other work, each 20 ms of either mode may
	// answer half or one and a half times its rate, and joined runs of a
	// model that does not batch last 3 ms. The model must settle on the
	// better mode and spend little time in the other:
	//   - a conv net at 64 callers: alone answers 1.6 times as many rows,
	//     at 36 µs of CPU a row against 63 joined;
	//   - the wide MLP at 64 callers: joining answers a little more, at
	//     less than half the CPU per row; rates alone are too close to
	//     tell in so much noise (where they lean the other way, the
	//     model explores again, pooling, rather than let the CPU per row
	//     overrule them: 4-5% of the time);
	//   - either, where the CPU time cannot be read: rates alone.
	const us = time.Microsecond
	for _, tc := range []struct {
		name       string
		alone, joi float64
		cpu        [2]time.Duration
		wantJoin   bool
		worst      float64 // most share of the time in the worse mode
	}{
		{"conv", 32_000, 20_000, [2]time.Duration{36 * us, 63 * us}, false, 0.06},
		{"wide", 25_000, 28_000, [2]time.Duration{72 * us, 33 * us}, true, 0.05},
		{"alone wins, no CPU", 32_000, 20_000, [2]time.Duration{}, false, 0.08},
		{"joining wins, no CPU", 20_000, 32_000, [2]time.Duration{}, true, 0.08},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(20) {
				c := newCostModel()
				c.cpu, c.procs = noCPU, 2
				now := time.Unix(0, 0)
				rng := rand.New(rand.NewPCG(seed, 7))
				driveNoisy(&c, &now, rng, [2]float64{tc.alone, tc.joi}, tc.cpu, 0.5, 3*time.Millisecond, 500*time.Millisecond) // warm up
				joining, all := driveNoisy(&c, &now, rng, [2]float64{tc.alone, tc.joi}, tc.cpu, 0.5, 3*time.Millisecond, 10*time.Second)
				worse := float64(joining) / float64(all)
				if tc.wantJoin {
					worse = 1 - worse
				}
				if worse > tc.worst {
					t.Errorf("seed %d: %.1f%% of the time in the worse mode, want at most %.0f%%", seed, 100*worse, 100*tc.worst)
				}
			}
		})
	}
}

func TestCostModelRatesOverruleCPU(t *testing.T) {
	// The fraud MLP at 8 callers on a quiet machine: joining costs 2.4 µs
	// of CPU a row, running alone 4.2 (1.75 times as much: cheaper says
	// join), but joining keeps one run slot busy while running alone
	// keeps both cores busy, and answers 12% more. Once the rates tell,
	// the batcher runs alone.
	const us = time.Microsecond
	for seed := range uint64(20) {
		c := newCostModel()
		c.cpu = noCPU
		now := time.Unix(0, 0)
		rng := rand.New(rand.NewPCG(seed, 7))
		c.procs = 2
		rates, cpu := [2]float64{530_000, 473_000}, [2]time.Duration{4200, 2400}
		driveNoisy(&c, &now, rng, rates, cpu, 0.1, 10*us, 2*time.Second)
		joining, all := driveNoisy(&c, &now, rng, rates, cpu, 0.1, 10*us, 10*time.Second)
		if share := float64(joining) / float64(all); share > 0.2 {
			t.Errorf("seed %d: %.1f%% of the time joining, want at most 20%% (rates %v)", seed, 100*share, c.rate)
		}
	}
}

func TestGatherProbesEveryGatherProbeLockedLoneRun(t *testing.T) {
	// Gatherings that bring nobody (a lone caller) are still tried, once
	// every gatherProbe lone runs of the locked path, and never more: not
	// on the runs the fast path sends there to be timed, which would make
	// a lone caller pay for a gathering every 64 requests.
	c := newCostModel()
	for range 8 {
		c.gathered(1) // nobody came
	}
	if c.gatherN >= gatherOn {
		t.Fatalf("gatherN = %v after gatherings that brought nobody", c.gatherN)
	}
	tries := 0
	for range 10 * gatherProbe {
		if c.gathers() {
			tries++
		}
	}
	if tries != 10 {
		t.Errorf("%d gatherings in %d lone runs, want 10", tries, 10*gatherProbe)
	}
	c.joins = false
	for range 2 * gatherProbe {
		if c.gathers() {
			t.Fatal("gathers while running alone")
		}
	}
}

func TestCostModelCPUBeyondTheCoresIsSure(t *testing.T) {
	// Running alone at 2.7 times joining's CPU per row cannot answer more
	// on 2 cores than joining on one, whatever the rates say (under load
	// that moves over seconds, pooled rates did say so for the wide MLP);
	// and joining at more CPU per row than alone cannot either. The
	// batcher keeps the mode the CPU per row is sure of.
	const us = time.Microsecond
	for _, tc := range []struct {
		name       string
		alone, joi float64
		cpu        [2]time.Duration
		wantJoin   bool
	}{
		{"wide under load", 30_000, 25_000, [2]time.Duration{101 * us, 38 * us}, true},
		{"conv under load", 20_000, 24_000, [2]time.Duration{36 * us, 50 * us}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(10) {
				c := newCostModel()
				c.cpu, c.procs = noCPU, 2
				now := time.Unix(0, 0)
				rng := rand.New(rand.NewPCG(seed, 7))
				rates := [2]float64{tc.alone, tc.joi}
				driveNoisy(&c, &now, rng, rates, tc.cpu, 0.1, 3*time.Millisecond, time.Second)
				joining, all := driveNoisy(&c, &now, rng, rates, tc.cpu, 0.1, 3*time.Millisecond, 10*time.Second)
				share := float64(joining) / float64(all)
				if !tc.wantJoin {
					share = 1 - share
				}
				if share < 0.9 {
					t.Errorf("seed %d: %.1f%% of the time in the mode the CPU per row is sure of, want 90%% or more", seed, 100*share)
				}
			}
		})
	}
}

func TestCostModelSmallWinWins(t *testing.T) {
	// A mode that answers 5% more must win in the end: with a fixed 10%
	// to win, the fraud MLP at 8 callers stayed joining for ever at 0.95
	// times the rate of running alone (in-process, 2 cores: 4.6 µs of CPU
	// a row alone against 3.1 joined, too close for the CPU per row to
	// decide). Pooled over explorations, a difference that holds is told
	// from the noise, and the margin to win shrinks with what is pooled.
	const us = time.Microsecond
	for _, tc := range []struct {
		name       string
		alone, joi float64
		cpu        [2]time.Duration
		wantJoin   bool
	}{
		{"alone 5% faster", 105_000, 100_000, [2]time.Duration{4600, 3100}, false},
		{"alone 5% faster, no CPU", 105_000, 100_000, [2]time.Duration{}, false},
		{"joining 5% faster", 100_000, 105_000, [2]time.Duration{4600, 3100}, true},
		{"conv alone 6% faster", 33_000, 31_000, [2]time.Duration{40 * us, 45 * us}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(20) {
				c := newCostModel()
				c.cpu, c.procs = noCPU, 2
				now := time.Unix(0, 0)
				rng := rand.New(rand.NewPCG(seed, 7))
				rates := [2]float64{tc.alone, tc.joi}
				driveNoisy(&c, &now, rng, rates, tc.cpu, 0.1, time.Millisecond, 3*time.Second)
				joining, all := driveNoisy(&c, &now, rng, rates, tc.cpu, 0.1, time.Millisecond, 10*time.Second)
				// What the batcher answered, against the better mode
				// throughout: explorations cost about 1% of the rows.
				got := joining.Seconds()*tc.joi + (all-joining).Seconds()*tc.alone
				if ratio := got / (all.Seconds() * max(tc.alone, tc.joi)); ratio < 0.985 {
					t.Errorf("seed %d: answered %.3f of the better mode's rows, want at least 0.985 (%.0f%% of the time joining; rates %v)", seed, ratio, 100*joining.Seconds()/all.Seconds(), c.rate)
				}
			}
		})
	}
}

func TestCostModelTieDoesNotFlap(t *testing.T) {
	// Where the modes answer the same, within a shared machine's noise,
	// the batcher does not move to and fro: what it pays for looking is
	// the explorations, and a switch restarts them.
	for seed := range uint64(20) {
		c := newCostModel()
		c.cpu, c.procs = noCPU, 2
		now := time.Unix(0, 0)
		rng := rand.New(rand.NewPCG(seed, 7))
		rates := [2]float64{100_000, 100_000}
		switches, was := 0, c.best
		for range 100 {
			driveNoisy(&c, &now, rng, rates, [2]time.Duration{}, 0.3, time.Millisecond, 100*time.Millisecond)
			if c.best != was {
				switches++
				was = c.best
			}
		}
		if switches > 4 {
			t.Errorf("seed %d: %d switches in 10 s between modes that answer the same", seed, switches)
		}
	}
}

func TestCostModelFollowsAChangeAfterATie(t *testing.T) {
	// Explorations too close to tell pool both modes' rates; a change of
	// load after a long tie (the mode it was not in becomes a third
	// faster) must still be seen within a few explorations, not once the
	// pools have been outweighed.
	for seed := range uint64(20) {
		c := newCostModel()
		c.cpu, c.procs = noCPU, 2
		now := time.Unix(0, 0)
		rng := rand.New(rand.NewPCG(seed, 7))
		driveNoisy(&c, &now, rng, [2]float64{100_000, 100_000}, [2]time.Duration{}, 0.1, time.Millisecond, 30*time.Second)
		was := c.best
		rates := [2]float64{130_000, 100_000}
		if !was {
			rates = [2]float64{100_000, 130_000}
		}
		joining, all := driveNoisy(&c, &now, rng, rates, [2]time.Duration{}, 0.1, time.Millisecond, 3*time.Second)
		share := joining.Seconds() / all.Seconds()
		if !was {
			share = 1 - share
		}
		if share > 0.3 || c.best == was {
			t.Errorf("seed %d: %.0f%% of the 3 s after the other mode became a third faster spent in the old one (in it at the end: %v)", seed, 100*share, c.best == was)
		}
	}
}

// driveBursts is driveNoisy under a load that stops for off after every
// on: nothing is answered while it is off, and the process's CPU goes on
// at otherCPU per second of it (other models, other requests, the other
// side of an interleaved benchmark). in counts the time with the load
// on, by mode.
func driveBursts(c *costModel, now *time.Time, rng *rand.Rand, rates [2]float64, cpu [2]time.Duration, joinedRun, on, off time.Duration, otherCPU float64, total time.Duration) (in [2]time.Duration) {
	used := c.cpu()
	c.cpu = func() time.Duration { return used }
	factor, next, carry := 1.0, *now, 0.0
	for end := now.Add(total); now.Before(end); {
		for stop := now.Add(on); now.Before(stop); {
			if !now.Before(next) {
				factor, next = 0.9+0.2*rng.Float64(), now.Add(minWindow)
			}
			step := time.Millisecond
			if c.joins {
				step = joinedRun
			}
			in[mode(c.joins)] += step
			*now = now.Add(step)
			carry += rates[mode(c.joins)] * factor * step.Seconds()
			rows := int64(carry)
			carry -= float64(rows)
			used += time.Duration(rows) * cpu[mode(c.joins)]
			c.answered(*now, rows, 1, step, true)
		}
		*now = now.Add(off)
		used += time.Duration(otherCPU * float64(off))
	}
	return in
}

func TestCostModelPausedLoad(t *testing.T) {
	// A load that stops for 100 ms after every 100 ms, while other work
	// keeps both cores busy: the window open when the load stopped would
	// count the pause's time and the other work's CPU for its mode. The
	// conv net at 256 callers, interleaved with unbatched slices in
	// BenchmarkBatchInterleaved, ended joining in two rounds of three at
	// 0.57-0.60 times the rows running alone answered, with joined rows
	// costing what rows alone do: running alone's pool had the other
	// side's CPU in it, and CPU per row more than twice joining's is sure.
	const us = time.Microsecond
	for _, tc := range []struct {
		name  string
		rates [2]float64
		cpu   [2]time.Duration
		want  bool // joining
	}{
		{"conv c256", [2]float64{50_000, 30_000}, [2]time.Duration{36 * us, 35 * us}, false},
		{"wide c64", [2]float64{25_000, 32_000}, [2]time.Duration{72 * us, 33 * us}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(10) {
				c := newCostModel()
				c.procs = 2
				now := time.Unix(0, 0)
				rng := rand.New(rand.NewPCG(seed, 11))
				driveBursts(&c, &now, rng, tc.rates, tc.cpu, 2*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond, 2, 2*time.Second)
				in := driveBursts(&c, &now, rng, tc.rates, tc.cpu, 2*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond, 2, 20*time.Second)
				if share := float64(in[mode(tc.want)]) / float64(in[0]+in[1]); share < 0.85 || c.best != tc.want {
					t.Errorf("seed %d: best joining %v, want %v; %.2f of the loaded time in the better mode, want 0.85 or more", seed, c.best, tc.want, share)
				}
			}
		})
	}
}

func TestCostModelSampledRunsAreNoPause(t *testing.T) {
	// A 10 ms model running alone on two cores is timed, and answered to
	// the cost model, once in fastSample runs: every 320 ms, with 64 runs
	// counted in bulk. That is no pause in the load, though no window's
	// length passes without an answer: the windows must close, or the
	// cost model never measures running alone against joining (here 4
	// rows a 10 ms run, twice the rows).
	c := newCostModel()
	c.cpu, c.procs = noCPU, 2
	now := time.Unix(0, 0)
	const run = 10 * time.Millisecond
	var in [2]time.Duration
	for end := now.Add(60 * time.Second); now.Before(end); {
		step, rows, runs := run, int64(4), int64(1)
		if !c.joins {
			step, rows, runs = fastSample*run/2, fastSample, fastSample
		}
		in[mode(c.joins)] += step
		now = now.Add(step)
		c.answered(now, rows, runs, run, true)
	}
	if share := float64(in[1]) / float64(in[0]+in[1]); !c.best || share < 0.8 {
		t.Errorf("best joining %v, %.2f of the time joining; want joining, 0.8 or more (in %v)", c.best, share, in)
	}
}

func TestCostModelPauseAfterLoneRuns(t *testing.T) {
	// Running alone after joining, the mean run time is still about a
	// joined run's (the conv net at 256 callers: 2 ms) while the runs
	// counted in bulk are lone ones of 30 µs: 64 of them answered 100 ms
	// after the last answer took 2 ms of it, and the window open since
	// before is no measure of running alone.
	start := time.Unix(0, 0)
	for _, tc := range []struct {
		name          string
		alone, joined time.Duration // the cost model's estimates a row
		firstRows     int64         // answered by the last run before the pause
		gap           time.Duration
		rows          int64 // and runs, answered after the pause
		run           time.Duration
	}{
		{"after lone runs", 30 * time.Microsecond, 0, 6, 100 * time.Millisecond, 64, 2 * time.Millisecond},
		// Before any lone run was timed (the first exploration of
		// running alone), the runs in bulk are timed at a joined row's
		// (2 ms runs of 20 rows): 117 of them after 118 ms are a pause
		// too.
		{"no lone run timed yet", 0, 100 * time.Microsecond, 20, 118 * time.Millisecond, 117, 2700 * time.Microsecond},
	} {
		c := newCostModel()
		c.cpu = noCPU
		c.alone, c.joined = float64(tc.alone), float64(tc.joined)
		c.answered(start, tc.firstRows, 1, 2*time.Millisecond, true)
		now := start.Add(tc.gap)
		c.answered(now, tc.rows, tc.rows, tc.run, true)
		if c.pool.d != 0 || c.pool.rows != 0 || !c.win.start.Equal(now) || c.win.rows != 0 {
			t.Errorf("%s: measured %d rows over %v, window from %v with %d rows; want nothing measured and the window restarted at the answer after the pause, %v",
				tc.name, c.pool.rows, c.pool.d, c.win.start.Sub(start), c.win.rows, now.Sub(start))
		}
	}
	// Without the pause, the same answer is 64 runs in 2 ms: the window
	// goes on.
	c := newCostModel()
	c.cpu = noCPU
	c.alone = float64(30 * time.Microsecond)
	c.answered(start, 6, 1, 2*time.Millisecond, true)
	c.answered(start.Add(3*time.Millisecond), 64, 64, 2*time.Millisecond, true)
	if !c.win.start.Equal(start) || c.win.rows != 70 {
		t.Errorf("window from %v with %d rows; want it from the first answer with 70", c.win.start.Sub(start), c.win.rows)
	}
}

func TestCostModelOneSpoiltExploration(t *testing.T) {
	// Running alone answers twice the rows at the same CPU a row (the
	// conv net at 256 callers), but the first exploration of it is
	// spoilt: a burst of other work leaves it a quarter of its rate at 40
	// times the CPU a row, which makes joining sure (cheaper). The model
	// must look again soon, not after exploreMax, and run alone within
	// 4 s: half the spoilt measure is pooled with the next exploration,
	// which it still outweighs, so it takes three (2.7 s here; 9.6 s with
	// the spacing set by the spoilt exploration's loss alone).
	c := newCostModel()
	c.procs = 2
	var used time.Duration
	c.cpu = func() time.Duration { return used }
	start := time.Unix(0, 0)
	now := start
	rates := [2]float64{50_000, 25_000}
	const cpuRow = 35 * time.Microsecond
	var spoilt, back time.Duration // when the spoilt exploration began, when joining resumed after it
	var alone time.Duration        // when running alone became the best mode after it
	for now.Sub(start) < 20*time.Second && alone == 0 {
		const step = time.Millisecond
		now = now.Add(step)
		rows, per := int64(rates[mode(c.joins)]*step.Seconds()), cpuRow
		if !c.joins && back == 0 && (c.phase == exploring || c.phase == compared) {
			if spoilt == 0 {
				spoilt = now.Sub(start)
			}
			rows, per = rows/4, 40*per
		}
		used += time.Duration(rows) * per
		c.answered(now, rows, 1, step, true)
		switch {
		case spoilt > 0 && back == 0 && c.joins && c.phase != leaving:
			back = now.Sub(start)
		case back > 0 && !c.best:
			alone = now.Sub(start)
		}
	}
	if spoilt == 0 || back == 0 {
		t.Fatalf("no exploration of running alone, or it won though spoilt (spoilt at %v, joining again at %v)", spoilt, back)
	}
	if alone == 0 || alone-back > 4*time.Second {
		t.Errorf("spoilt exploration at %v, joining again at %v, running alone from %v; want running alone within 4s", spoilt, back, alone)
	}
}

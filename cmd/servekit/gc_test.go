package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{1 << 20, 32 << 20, 800},  // the runtime's own floor, 4 MiB × GOGC/100, reaches 32 MiB first
		{0, 32 << 20, 800},        // before the first collection
		{10 << 20, 32 << 20, 220}, // 10 MiB × 3.2
		{16 << 20, 32 << 20, 100}, // half the floor: Go's default from here on
		{1 << 30, 32 << 20, 100},  // a big heap is never multiplied
		{1 << 20, 0, 100},         // --gc-min-heap 0
		{1 << 20, 2 << 20, 100},   // a floor under Go's 4 MiB changes nothing
	} {
		if got := gcPercentFor(c.live, c.floor); got != c.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", c.live>>20, c.floor>>20, got, c.want)
		}
	}
}

// TestGCFloor: the tuner raises GOGC for this small test heap, runs again
// after each collection, and stop gives Go's default back.
func TestGCFloor(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: the tuner stays off, as it should")
	}
	tuner := &gcTuner{floor: 1 << 40}
	tuner.sample = append(tuner.sample, newLiveSample())
	tuner.tune()
	tuner.arm()
	for seen := 0; seen < 3; {
		runtime.GC()
		tuner.mu.Lock()
		seen = tuner.tunes
		tuner.mu.Unlock()
	}
	if p := gcPercent(); p <= 100 {
		t.Errorf("GOGC %d under the tuner, want more than 100 for a heap far under the floor", p)
	}
	tuner.stop()
	runtime.GC() // a cleanup after stop must not set it again
	if p := gcPercent(); p != 100 {
		t.Errorf("GOGC %d after stop, want 100", p)
	}
	if stop := startGCFloor(0); gcPercent() != 100 {
		t.Error("--gc-min-heap 0 changed GOGC")
	} else {
		stop()
	}
}

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

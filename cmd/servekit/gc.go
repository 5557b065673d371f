package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The Go heap's collection floor (--gc-min-heap). servekit serve keeps
// little Go memory alive (about 1 MiB: models live in ONNX Runtime's own
// memory), so with Go's defaults (GOGC=100, a 4 MiB floor) it collected
// every 3 MiB allocated: about a hundred times a second under load, at
// about 1 ms of CPU each, and the stacks it shrinks grow again: 15-20% of
// a one-core server's time on the demo model, REST and gRPC alike
// (bench/README.md, "gRPC on its own port": 16, 32 and 64 MiB floors
// measured the same; 16 is the smallest).
// Raising GOGC alone would multiply every heap, a big one too; a floor
// changes only a small heap: after each collection the tuner sets GOGC
// so that the next target is the floor, and back to 100 once the live
// heap is half the floor or more. GOMEMLIMIT still caps it; a GOGC set in
// the environment turns the tuner off (the operator chose).

// defaultHeapMinimum is the runtime's heap floor at GOGC=100; it scales
// with GOGC.
const defaultHeapMinimum = 4 << 20

// gcPercentFor is the GOGC that makes the next collection's target about
// floor bytes for a live heap of live bytes, never below Go's 100. The
// target is the larger of live×(1+GOGC/100) and the runtime's floor,
// 4 MiB×GOGC/100, so GOGC is the smaller of the two that reach floor.
func gcPercentFor(live, floor uint64) int {
	if floor == 0 {
		return 100
	}
	p := 100 * floor / defaultHeapMinimum
	if live > 0 {
		p = min(p, max(100*floor/live, 100)-100)
	}
	return int(max(p, 100))
}

// gcTuner sets GOGC after each collection (a cleanup on an object made
// unreachable for the purpose runs once per cycle).
type gcTuner struct {
	floor   uint64
	mu      sync.Mutex
	stopped bool
	last    int
	sample  []metrics.Sample
	tunes   int // for tests: collections seen
}

var gcTuning sync.Mutex // one tuner at a time in the process (tests run serve in parallel)

// startGCFloor keeps the heap target at floor bytes at least until stop,
// which restores GOGC=100. It does nothing (a no-op stop) when floor is 0,
// when $GOGC is set (not empty), or while another tuner runs.
func startGCFloor(floor uint64) (stop func()) {
	if floor == 0 || os.Getenv("GOGC") != "" || !gcTuning.TryLock() { // "" is Go's default too
		return func() {}
	}
	t := &gcTuner{floor: floor, sample: []metrics.Sample{newLiveSample()}}
	t.tune()
	t.arm()
	return func() {
		t.stop()
		gcTuning.Unlock()
	}
}

func (t *gcTuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(100)
}

// arm sets a cleanup that runs after the next collection.
func (t *gcTuner) arm() {
	runtime.AddCleanup(new([8]uint64), func(t *gcTuner) {
		if t.tune() {
			t.arm()
		}
	}, t)
}

// tune sets GOGC for the live heap of the last collection; false once
// stopped.
func (t *gcTuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	t.tunes++
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if p := gcPercentFor(live, t.floor); p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
	return true
}

func newLiveSample() metrics.Sample { return metrics.Sample{Name: "/gc/heap/live:bytes"} }

package serving_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
)

// A layer writes to whatever Timing the context carries, or to none: the
// methods do nothing on nil, so layers need no checks.
func TestTimingNilIsANoOp(t *testing.T) {
	tm := serving.TimingOf(context.Background())
	if tm != nil {
		t.Fatal("a bare context carries a Timing")
	}
	tm.AddQueue(time.Second)
	tm.Executed(serving.Execution{Rows: 1})
	tm.Charge(serving.TimingValues{ComputeInfer: time.Second}, true)
	tm.CacheResult(serving.CacheHit, time.Second)
	if v := tm.Values(); v.Executed() || v.Queue != 0 {
		t.Errorf("nil Timing has values %+v", v)
	}
}

// WithTiming carries a Timing to the layers; nil takes it away (a shadow
// copy must not charge the request). The first attachment of a Timing
// costs nothing: transports attach one per request.
func TestWithTiming(t *testing.T) {
	var tm serving.Timing
	ctx := serving.WithTiming(context.Background(), &tm)
	if serving.TimingOf(ctx) != &tm {
		t.Fatal("TimingOf does not find the Timing")
	}
	if serving.TimingOf(serving.WithTiming(ctx, nil)) != nil {
		t.Error("WithTiming(ctx, nil) still carries the Timing")
	}
	deadline, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if serving.TimingOf(deadline) != &tm {
		t.Error("a derived context lost the Timing")
	}
	if _, ok := ctx.Deadline(); ok || ctx.Err() != nil {
		t.Error("the Timing's context changed its parent's deadline or error")
	}
	allocs := testing.AllocsPerRun(100, func() {
		fresh := new(serving.Timing)
		serving.WithTiming(context.Background(), fresh)
	})
	if allocs > 1 { // the Timing itself
		t.Errorf("WithTiming allocates %v times for a fresh Timing, want only the Timing", allocs)
	}
}

// A batch's members are each charged its compute; the one that reports
// the batch's runs gets them, the others none; everything is safe from
// many goroutines.
func TestTimingCharge(t *testing.T) {
	batch := serving.TimingValues{ComputeInput: 1, ComputeInfer: 2, ComputeOutput: 3,
		Executions: []serving.Execution{{Rows: 4, ComputeInput: 1, ComputeInfer: 2, ComputeOutput: 3}}}
	var members [4]serving.Timing
	var wg sync.WaitGroup
	for i := range members {
		wg.Go(func() {
			members[i].AddQueue(time.Duration(i))
			members[i].Charge(batch, i == 0)
		})
	}
	wg.Wait()
	runs := 0
	for i := range members {
		v := members[i].Values()
		runs += len(v.Executions)
		if v.ComputeInfer != 2 || v.Queue != time.Duration(i) || !v.Executed() {
			t.Errorf("member %d: %+v", i, v)
		}
	}
	if runs != 1 {
		t.Errorf("%d runs reported, want the batch's one", runs)
	}
}

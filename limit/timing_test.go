package limit_test

import (
	"context"
	"testing"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
)

// A request that waited for a slot has its wait in its serving.Timing
// (the protocol's queue statistic); one admitted at once has none.
func TestTimingHasTheWait(t *testing.T) {
	g := newGate()
	l, err := limit.New(g, limit.WithMaxInFlight(1), limit.WithMaxQueue(1))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var first, second serving.Timing
	out := make(chan result, 2)
	go call(serving.WithTiming(context.Background(), &first), l, "a", out)
	<-g.entered
	go call(serving.WithTiming(context.Background(), &second), l, "b", out)
	poll.Until(t, "b queued", func() bool { return l.Stats().Waiting == 1 })
	g.release <- struct{}{}
	<-g.entered
	g.release <- struct{}{}
	for range 2 {
		if r := <-out; r.err != nil {
			t.Fatal(r.err)
		}
	}
	if q := first.Values().Queue; q != 0 {
		t.Errorf("admitted at once, queue time %v", q)
	}
	if q := second.Values().Queue; q <= 0 {
		t.Errorf("waited for a slot, queue time %v", q)
	}
}

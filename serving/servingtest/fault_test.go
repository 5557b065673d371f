package servingtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestInjectFaults(t *testing.T) {
	p := servingtest.InjectFaults(servingtest.Linear(2), servingtest.Faults{Panic: 0.1, Hang: 0.1, Error: 0.1, Seed: 42})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // hangs return at once
	const n = 3000
	var panics, hangs, errs, ok int64
	for range n {
		func() {
			defer func() {
				if r := recover(); r != nil {
					panics++
				}
			}()
			_, err := p.Predict(ctx, servingtest.Rows(2, 1, 0))
			switch serving.CodeOf(err) {
			case serving.Canceled:
				hangs++ // Linear also fails a cancelled ctx, but only hangs get there first
			case serving.Internal:
				errs++
			case serving.OK:
				ok++
			}
		}()
	}
	c := p.Counts()
	if c.Panics != panics || c.Errors != errs || c.Hangs+c.Passed != hangs+ok {
		t.Errorf("counts %+v, observed panics %d errors %d others %d", c, panics, errs, hangs+ok)
	}
	for name, v := range map[string]int64{"panics": c.Panics, "hangs": c.Hangs, "errors": c.Errors} {
		if v < n/20 || v > n/5 {
			t.Errorf("%s: %d of %d at rate 0.1", name, v, n)
		}
	}
	again := servingtest.InjectFaults(servingtest.Linear(2), servingtest.Faults{Panic: 0.1, Hang: 0.1, Error: 0.1, Seed: 42})
	for range n {
		func() {
			defer func() { _ = recover() }()
			_, _ = again.Predict(ctx, servingtest.Rows(2, 1, 0))
		}()
	}
	if again.Counts() != c {
		t.Errorf("same seed gave %+v, then %+v", c, again.Counts())
	}
}

func TestInjectedHangOutlivesTheDeadline(t *testing.T) {
	p := servingtest.InjectFaults(servingtest.Linear(2), servingtest.Faults{Hang: 1, HangExtra: 30 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := p.Predict(ctx, servingtest.Rows(2, 1, 0))
	if serving.CodeOf(err) != serving.DeadlineExceeded {
		t.Errorf("hang: %v, want deadline_exceeded", err)
	}
	if ctx.Err() == nil {
		t.Error("a hang returned before its context ended")
	}
}

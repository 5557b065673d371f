package onnx_test

import (
	"context"
	"sync"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
)

// TestWatcherWaitsOnSharedCtx: runs that all share one ctx (a batch job's
// workers) are watched by waiting on that ctx rather than by polling, and
// still stop when it ends; a run under another ctx arriving meanwhile
// puts the watcher back to polling, which stops that run when its own ctx
// ends (hookCtx ends it after the entry check: only a check of its ctx
// during the run can stop it).
func TestWatcherWaitsOnSharedCtx(t *testing.T) {
	m := loadSlowSines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := m.Predict(ctx, sinesRequest(slowN))
			errs <- err
		})
	}
	poll.Until(t, "the watcher to wait on the runs' shared ctx", func() bool { return onnx.WatcherWaits(m) })

	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	_, err := m.Predict(&hookCtx{Context: other, onErr: cancelOther}, sinesRequest(slowN))
	if code := serving.CodeOf(err); code != serving.Canceled {
		t.Fatalf("a run under its own ctx, cancelled while the others shared one: %v (code %v), want Canceled", err, code)
	}
	select {
	case err := <-errs:
		t.Fatalf("a run under the shared ctx ended (%v) before the ctx did", err)
	default:
	}

	cancel()
	wg.Wait()
	for range 2 {
		if err := <-errs; serving.CodeOf(err) != serving.Canceled {
			t.Errorf("a run under the shared ctx after it ended: %v, want Canceled", err)
		}
	}
	resp, err := m.Predict(context.Background(), sinesRequest(2))
	if err != nil {
		t.Fatalf("Predict after the stopped runs: %v", err)
	}
	wantSines(t, resp)
}

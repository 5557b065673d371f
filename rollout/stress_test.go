package rollout_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestSwitchesAndHotReplacesUnderLoad is the reliability target:
// 64 callers, while another goroutine does 100 Switch/Rollback pairs and
// 100 hot replaces of each version. Every request must succeed, be
// answered by an instance of the version its Response names, and no
// instance may be called after its Close or closed more than once.
func TestSwitchesAndHotReplacesUnderLoad(t *testing.T) {
	r := newRouter(t, "m", quiet)
	var g registry
	mustPut(t, r, "1", g.add("1"))
	mustPut(t, r, "2", g.add("2"))

	const callers, changes = 64, 100
	stop := make(chan struct{})
	var served, failed atomic.Int64
	var errs sync.Map
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := keyed("caller-" + strconv.Itoa(c) + "-" + strconv.Itoa(i%50))
				if i%7 == 0 {
					req.Key = "" // some unkeyed
				}
				resp, err := r.Predict(context.Background(), req)
				if err == nil {
					_, err = g.who(resp)
				}
				if err != nil {
					failed.Add(1)
					errs.Store(err.Error(), true)
					continue
				}
				served.Add(1)
			}
		})
	}

	// Each change waits until the callers have been served some more, so
	// changes land among requests, not before them.
	progress := func() {
		for start := served.Load(); served.Load() < start+2*callers && failed.Load() == 0; {
			runtime.Gosched()
		}
	}
	var ctl sync.WaitGroup
	ctl.Go(func() {
		for range changes {
			progress()
			if err := r.Switch("2"); err != nil {
				t.Errorf("Switch: %v", err)
			}
			progress()
			if err := r.Rollback(); err != nil {
				t.Errorf("Rollback: %v", err)
			}
		}
	})
	ctl.Go(func() {
		for range changes {
			for _, v := range []string{"1", "2"} {
				progress()
				if err := r.Put(v, g.add(v)); err != nil {
					t.Errorf("Put(%s): %v", v, err)
				}
			}
		}
	})
	ctl.Wait()
	close(stop)
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	if n := failed.Load(); n > 0 {
		errs.Range(func(k, _ any) bool { t.Log(k); return true })
		t.Errorf("%d of %d requests failed", n, n+served.Load())
	}
	if served.Load() == 0 {
		t.Fatal("no request served")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.all) != 2+2*changes {
		t.Fatalf("%d instances, want %d", len(g.all), 2+2*changes)
	}
	for _, in := range g.all {
		if n := in.closes.Load(); n != 1 {
			t.Errorf("instance %d of version %s closed %d times", in.id, in.version, n)
		}
		if n := in.late.Load(); n > 0 {
			t.Errorf("instance %d of version %s called %d times after Close", in.id, in.version, n)
		}
	}
	t.Logf("%d requests served", served.Load())
}

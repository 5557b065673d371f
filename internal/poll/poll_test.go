package poll_test

import (
	"sync/atomic"
	"testing"

	"github.com/servekit/servekit/internal/poll"
)

func TestUntil(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			n.Add(1)
		}
	}()
	poll.Until(t, "five increments", func() bool { return n.Load() == 5 })
	<-done
	calls := 0
	poll.Until(t, "a condition already true", func() bool { calls++; return true })
	if calls != 1 {
		t.Errorf("a true condition was checked %d times", calls)
	}
}

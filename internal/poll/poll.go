package poll

import (
	"testing"
	"time"
)

// Timeout bounds a wait.
const Timeout = 30 * time.Second

// Until calls cond until it returns true, and fails t with what (what the
// test waited for) when Timeout passes first. Call it from the test's
// goroutine: it ends the test with t.Fatalf.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for wait := 100 * time.Microsecond; !cond(); wait = min(2*wait, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("poll: after %v still waiting for %s", Timeout, what)
		}
		time.Sleep(wait)
	}
}

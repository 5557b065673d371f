package rollout

import "time"

// Clock is the time a Router reads and the timers it sets. The real clock
// is the default; a test passes one it steps by hand (see rollouttest), so
// that a plan's holds and checks happen exactly when the test says, with no
// sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless the
	// returned Timer is stopped first, as time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call set with Clock.AfterFunc. *time.Timer is one.
type Timer interface {
	// Stop prevents the call, reporting whether it did (false when the call
	// has already started or the timer was stopped).
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

package grpcserver

import "time"

// SetHealthInterval makes health Watch calls look every d, for tests that
// wait for a change; it returns the function that restores the interval.
// Call it before the server starts.
func SetHealthInterval(d time.Duration) (restore func()) {
	old := healthInterval
	healthInterval = d
	return func() { healthInterval = old }
}

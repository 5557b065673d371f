// Package poll is the module's one way for a test to wait for something
// another goroutine or process makes true (a queue reaching a depth, a
// file rotated, a version reloaded) when the code under test offers no
// event to wait on. It replaces the waitFor / eventually helpers each
// package had written for itself.
//
// A wait is a poll, not a sleep: it returns as soon as the condition holds
// (checked at once, then at intervals that double from 100 µs to 10 ms),
// so a passing test never waits for the timeout, and the timeout is long
// (Timeout) because CI machines are shared and a slow pass is not a
// failure. A test still asserts something: Until fails the test, naming
// what never happened.
package poll

// Package rollouttest helps test code that runs rollout plans: Clock is a
// rollout.Clock a test steps by hand, so a plan's holds and checks happen
// at exactly the moments the test chooses, without sleeping:
//
//	clock := rollouttest.NewClock(time.Now())
//	r, err := rollout.New("fraud", rollout.WithClock(clock))
//	r.Start(plan)
//	clock.Advance(time.Minute) // every check due in that minute has run
//
// A Clock is safe for concurrent use; timers fire in the goroutine that
// calls Advance. See rollout's ExampleRouter_Start.
package rollouttest

package batch

// Test hooks: a black-box test drives the scheduler with a fake clock.
type (
	Clock = clock
	Timer = timer
)

func WithClock(c Clock) Option { return withClock(c) }

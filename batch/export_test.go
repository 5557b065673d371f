package batch

// Test hooks: a black-box test drives the scheduler with a fake clock.
type (
	Clock = clock
	Timer = timer
)

func WithClock(c Clock) Option { return withClock(c) }

// WithHook calls f(1) as a run starts and f(-1) once it has handed out its
// answers or was ended at its limit (f must not block or call the Batcher).
func WithHook(f func(delta int)) Option { return optionFunc(func(c *config) { c.hook = f }) }

// RejectReasons lists the reason attribute values of servekit.batch.rejected.
func RejectReasons() []string { return reasonNames[:] }

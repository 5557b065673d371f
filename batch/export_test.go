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

// RunAlone puts adaptive mode in running alone for good, as if every
// exploration of joining had lost by far.
func RunAlone(b *Batcher) {
	b.mu.Lock()
	b.cost.joins, b.cost.best, b.cost.phase = false, false, steady
	b.cost.since, b.cost.every = 0, 1<<62
	b.unlock()
}

// FastSampled reports whether the next lone one-row request would be sent
// to the locked path to be timed (one in fastSample lone runs, fast ones
// and locked ones counted together) rather than take the fast path.
// Stats.Untimed cannot tell: it leaves out the lone runs of the locked
// path.
func FastSampled(b *Batcher) bool { return (b.fast.Load()/fastGen)%fastSample == fastSample-1 }

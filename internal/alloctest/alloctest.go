// Package alloctest measures what a piece of code allocates, for tests that
// hold decoders to their cost budget (serving's package doc, "Cost").
//
// Bytes runs f on the calling goroutine after two garbage collections, so
// that sync.Pools start empty (the worst case: every pooled buffer is
// allocated afresh), and reads runtime.MemStats.TotalAlloc around it.
// TotalAlloc counts every goroutine's allocations, so it takes the least of
// a few runs: another goroutine can only add bytes, never hide them. Tests
// that use it must not run in parallel with others in their package, and
// skip when Race is set.
package alloctest

import "runtime"

// Bytes returns the bytes f allocates: the least over runs runs (3 when
// runs < 1).
func Bytes(runs int, f func()) uint64 {
	if runs < 1 {
		runs = 3
	}
	least := ^uint64(0)
	var before, after runtime.MemStats
	for range runs {
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// Once returns the bytes f allocates in one run, without collecting first:
// cheap enough for a fuzz target to call on every input. Pools may be warm,
// so it never reports more than Bytes would; what it reports above the
// budget is a real excess.
func Once(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

//go:build race

package alloctest

// Race reports whether the race detector is on: it slows a decoder tenfold
// and makes sync.Pool drop items at random, so budget tests skip under it
// and `make test` runs them in a build of their own.
const Race = true

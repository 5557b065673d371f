package cache

import (
	"time"

	"github.com/servekit/servekit/serving"
)

// WithHash replaces the slot hash, so a test can force collisions.
func WithHash(h func(*serving.Request) uint64) Option {
	return optionFunc(func(c *config) { c.hash = h })
}

// WithClock replaces the clock of expiry and the L2 circuit.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// EncodeEntry and DecodeEntry expose the L2 codec to tests.
var (
	EncodeEntry = encodeEntry
	DecodeEntry = decodeEntry
	AppendKey   = appendKey
	KeyEqual    = keyEqual
)

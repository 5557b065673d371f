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

// The L2 codec and the key, for tests.
var (
	EncodeEntry  = encodeEntry
	DecodeEntry  = decodeEntry
	DecodeBudget = decodeBudget
	Sign         = sign
	AppendKey    = appendKey
	KeyEqual     = keyEqual
	SameKey      = sameKey
	SumKey       = sumKey
)

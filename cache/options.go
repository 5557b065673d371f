package cache

import (
	"bytes"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

// Defaults of New. They suit a service with a few models and small tensors;
// size MaxBytes to the memory you can spare.
const (
	DefaultMaxEntries     = 100_000
	DefaultMaxBytes       = 64 << 20
	DefaultMaxEntryBytes  = 1 << 20
	DefaultComputeTimeout = time.Minute
	DefaultL2Timeout      = 50 * time.Millisecond
	DefaultL2Queue        = 1024
	DefaultL2Writers      = 2
	DefaultL2Prefix       = "servekit:cache:"
	DefaultBreakerErrors  = 5
	DefaultBreakerBackoff = 5 * time.Second
)

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxEntries     int
	maxBytes       int64
	maxEntryBytes  int64
	ttl            time.Duration
	computeTimeout time.Duration
	meters         metric.MeterProvider
	tracers        trace.TracerProvider
	log            *slog.Logger

	redis redis.UniversalClient
	l2    l2config

	// Test seams (set through export_test.go): the slot hash and the clock.
	hash func(req *serving.Request) uint64
	now  func() time.Time
}

type l2config struct {
	timeout        time.Duration
	queue, writers int
	prefix         string
	breakerErrors  int
	breakerBackoff time.Duration
	// keys authenticate values: the first signs, every one verifies.
	keys            [][]byte
	unauthenticated bool
}

// MinL2KeyBytes is the shortest HMAC key WithL2Key takes: 256 bits, the
// strength of HMAC-SHA256.
const MinL2KeyBytes = 32

// WithMaxEntries bounds the number of L1 entries (default DefaultMaxEntries).
func WithMaxEntries(n int) Option { return optionFunc(func(c *config) { c.maxEntries = n }) }

// WithMaxBytes bounds the approximate memory of L1 entries, key and response
// together (default DefaultMaxBytes).
func WithMaxBytes(n int64) Option { return optionFunc(func(c *config) { c.maxBytes = n }) }

// WithMaxEntryBytes sets the largest entry that is stored, in either tier
// (default DefaultMaxEntryBytes, and never more than MaxBytes); it also
// bounds what an L2 read takes. Larger answers are returned but not cached.
func WithMaxEntryBytes(n int64) Option { return optionFunc(func(c *config) { c.maxEntryBytes = n }) }

// WithTTL makes entries expire d after they were computed (default 0: never;
// they leave only by LRU eviction or Purge). Expiry is checked lazily on
// lookup; nothing runs in the background.
func WithTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.ttl = d }) }

// WithComputeTimeout bounds a coalesced computation (default
// DefaultComputeTimeout). The computation is detached from its callers'
// contexts, so this is its only deadline; it is also cancelled as soon as
// every caller waiting for it has gone.
func WithComputeTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.computeTimeout = d })
}

// WithMeterProvider records metrics with mp (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

// WithTracerProvider records cache.lookup spans with tp (default
// otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracers = tp })
}

// WithLogger logs through l (default slog.Default()): the unauthenticated
// L2 warning, rejected L2 entries, model panics.
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.log = l }) }

// WithRedis adds a shared L2 tier on client: read after an L1 miss, written
// behind after a computation. The client must honour context deadlines
// (redis.Options.ContextTimeoutEnabled), or the L2 timeout could not hold and a
// slow Redis would slow requests; New rejects a *redis.Client or
// *redis.ClusterClient without it. Entries are authenticated: give
// WithL2Key, or WithL2Unauthenticated to do without, or New refuses. The
// Cache does not close client.
func WithRedis(client redis.UniversalClient, opts ...L2Option) Option {
	return optionFunc(func(c *config) {
		c.redis = client
		for _, o := range opts {
			o.applyL2(&c.l2)
		}
	})
}

// L2Option configures the Redis tier (see WithRedis).
type L2Option interface{ applyL2(*l2config) }

type l2OptionFunc func(*l2config)

func (f l2OptionFunc) applyL2(c *l2config) { f(c) }

// WithL2Timeout bounds every Redis call (default DefaultL2Timeout).
func WithL2Timeout(d time.Duration) L2Option {
	return l2OptionFunc(func(c *l2config) { c.timeout = d })
}

// WithL2Prefix sets the prefix of Redis keys (default DefaultL2Prefix).
func WithL2Prefix(p string) L2Option { return l2OptionFunc(func(c *l2config) { c.prefix = p }) }

// WithL2WriteBehind sizes the write-behind queue and its writer goroutines
// (defaults DefaultL2Queue, DefaultL2Writers). When the queue is full, writes
// are dropped and counted, never waited for.
func WithL2WriteBehind(queue, writers int) L2Option {
	return l2OptionFunc(func(c *l2config) { c.queue, c.writers = queue, writers })
}

// WithL2Breaker sets the circuit: after errors consecutive Redis errors the
// tier is skipped for backoff, then tried again (defaults
// DefaultBreakerErrors, DefaultBreakerBackoff).
func WithL2Breaker(errors int, backoff time.Duration) L2Option {
	return l2OptionFunc(func(c *l2config) { c.breakerErrors, c.breakerBackoff = errors, backoff })
}

// WithL2Key authenticates L2 entries with HMAC-SHA256 under key, which every
// replica sharing the Redis must be given (at least MinL2KeyBytes bytes of
// secret; e.g. openssl rand -hex 32). Entries are signed with key and
// accepted under key or any of previous, so a key can be rotated without a
// wave of rejected entries: deploy (new, old) everywhere, then new alone. An
// entry whose tag does not verify is never parsed: it is a miss, counted
// (Stats.L2Rejected), and deleted. The key is copied.
func WithL2Key(key []byte, previous ...[]byte) L2Option {
	return l2OptionFunc(func(c *l2config) {
		c.keys = c.keys[:0]
		for _, k := range append([][]byte{key}, previous...) {
			c.keys = append(c.keys, bytes.Clone(k))
		}
	})
}

// WithL2Unauthenticated lets the L2 tier run without a key: entries then
// carry an HMAC under the empty key, a checksum that catches corruption and
// truncation but not a forgery, so whoever can write to the Redis can
// change the answers every replica serves. New logs a warning saying so.
// Use it only where the Redis is reachable by the servers alone.
func WithL2Unauthenticated() L2Option {
	return l2OptionFunc(func(c *l2config) { c.unauthenticated = true })
}

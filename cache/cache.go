package cache

import (
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/servekit/servekit/serving"
)

var errCacheClosed = serving.Errorf(serving.Unavailable, "cache: closed")

// Cache is the response store: an in-memory LRU (L1), optionally
// backed by Redis (L2), and the single-flight group that coalesces misses.
// One Cache may serve many models and middleware instances; entries are keyed
// by model and version. It is safe for concurrent use.
type Cache struct {
	l1        *store
	ttl       time.Duration
	maxEntry  int64
	hash      func(req *serving.Request, fp string) uint64
	now       func() time.Time
	flight    flights
	l2        *l2 // nil without Redis
	tel       *telemetry
	log       *slog.Logger
	n         counters
	bytes     atomic.Int64
	entries   atomic.Int64
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Stats are the cache's counters since New, as plain values. Every request
// through the middleware counts once: in HitsL1, HitsL2, Misses (the model
// computed it), Coalesced (it waited for an identical request's
// computation) or Bypassed.
type Stats struct {
	HitsL1, HitsL2 uint64
	Misses         uint64
	Coalesced      uint64
	Bypassed       uint64
	Evictions      uint64 // L1 entries removed for the entry or byte bound
	Expired        uint64 // L1 entries found past their TTL
	Entries        int64  // L1 entries now
	Bytes          int64  // approximate L1 memory now
	L2Errors       uint64 // failed or timed-out Redis calls
	L2Writes       uint64 // entries written to Redis
	L2Dropped      uint64 // writes dropped: queue full, circuit open or closing
	L2Skipped      uint64 // reads skipped while the circuit was open
	L2Rejected     uint64 // entries that failed authentication or bounds checks: missed and deleted
}

// New returns a Cache. Without WithRedis it starts no goroutine of its own
// beyond the computations of misses in flight; with it, the write-behind
// writers. Close stops them.
func New(opts ...Option) (*Cache, error) {
	cfg := config{
		maxEntries:     DefaultMaxEntries,
		maxBytes:       DefaultMaxBytes,
		maxEntryBytes:  DefaultMaxEntryBytes,
		computeTimeout: DefaultComputeTimeout,
		l2: l2config{
			timeout:        DefaultL2Timeout,
			queue:          DefaultL2Queue,
			writers:        DefaultL2Writers,
			prefix:         DefaultL2Prefix,
			breakerErrors:  DefaultBreakerErrors,
			breakerBackoff: DefaultBreakerBackoff,
		},
		now: time.Now,
		log: slog.Default(),
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		ttl:      cfg.ttl,
		log:      cfg.log,
		now:      cfg.now,
		flight:   flights{calls: make(map[uint64]*call), timeout: cfg.computeTimeout},
		maxEntry: min(cfg.maxEntryBytes, cfg.maxBytes),
	}
	c.flight.joins = &c.n.coalesced
	c.flight.log = cfg.log
	if h := cfg.hash; h != nil {
		c.hash = func(req *serving.Request, _ string) uint64 { return h(req) }
	} else {
		seed := maphash.MakeSeed()
		c.hash = func(req *serving.Request, fp string) uint64 { return hashKey(seed, req, fp) }
	}
	c.l1 = newStore(c, cfg.maxEntries, cfg.maxBytes)
	tel, err := newTelemetry(c, cfg.meters, cfg.tracers)
	if err != nil {
		return nil, serving.Errorf(serving.Internal, "cache: telemetry: %w", err)
	}
	c.tel = tel
	if cfg.redis != nil {
		if cfg.l2.unauthenticated {
			cfg.l2.keys = [][]byte{nil}
			c.log.Warn("cache: L2 entries are not authenticated (WithL2Unauthenticated): whoever can write to the Redis can change the answers every replica serves")
		}
		c.l2 = newL2(c, cfg.redis, cfg.l2)
	}
	return c, nil
}

func (cfg *config) validate() error {
	switch {
	case cfg.maxEntries <= 0:
		return serving.Errorf(serving.InvalidArgument, "cache: max entries %d must be positive", cfg.maxEntries)
	case cfg.maxBytes <= 0:
		return serving.Errorf(serving.InvalidArgument, "cache: max bytes %d must be positive", cfg.maxBytes)
	case cfg.maxEntryBytes <= 0:
		return serving.Errorf(serving.InvalidArgument, "cache: max entry bytes %d must be positive", cfg.maxEntryBytes)
	case cfg.ttl < 0:
		return serving.Errorf(serving.InvalidArgument, "cache: negative TTL %v", cfg.ttl)
	case cfg.log == nil:
		return serving.Errorf(serving.InvalidArgument, "cache: nil logger")
	case cfg.computeTimeout <= 0:
		return serving.Errorf(serving.InvalidArgument, "cache: compute timeout %v must be positive", cfg.computeTimeout)
	}
	if cfg.redis == nil {
		return nil
	}
	l := cfg.l2
	switch {
	case l.timeout <= 0:
		return serving.Errorf(serving.InvalidArgument, "cache: L2 timeout %v must be positive", l.timeout)
	case l.queue <= 0 || l.writers <= 0:
		return serving.Errorf(serving.InvalidArgument, "cache: L2 write-behind queue %d and writers %d must be positive", l.queue, l.writers)
	case l.breakerErrors <= 0 || l.breakerBackoff < 0:
		return serving.Errorf(serving.InvalidArgument, "cache: L2 breaker of %d errors, backoff %v", l.breakerErrors, l.breakerBackoff)
	case len(l.keys) == 0 && !l.unauthenticated:
		return serving.Errorf(serving.InvalidArgument, "cache: the L2 tier needs a key to authenticate its entries (WithL2Key), or WithL2Unauthenticated to run without one")
	case len(l.keys) > 0 && l.unauthenticated:
		return serving.Errorf(serving.InvalidArgument, "cache: WithL2Key and WithL2Unauthenticated contradict each other")
	}
	for i, k := range l.keys {
		if len(k) < MinL2KeyBytes {
			return serving.Errorf(serving.InvalidArgument, "cache: L2 key %d has %d bytes, want at least %d (e.g. openssl rand -hex 32)", i, len(k), MinL2KeyBytes)
		}
	}
	// Without ContextTimeoutEnabled go-redis ignores context deadlines on the
	// socket and waits its ReadTimeout (seconds) on a stalled server.
	var ctxTimeouts = true
	switch r := cfg.redis.(type) {
	case *redis.Client:
		ctxTimeouts = r.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		ctxTimeouts = r.Options().ContextTimeoutEnabled
	}
	if !ctxTimeouts {
		return serving.Errorf(serving.InvalidArgument, "cache: the redis client must set ContextTimeoutEnabled, or the L2 timeout cannot hold")
	}
	return nil
}

// nowNanos is the clock for expiry, or 0 when nothing can expire (then the
// hit path does not read the clock).
func (c *Cache) nowNanos() int64 {
	if c.ttl == 0 && c.l2 == nil {
		return 0
	}
	return c.now().UnixNano()
}

func (c *Cache) expiry() int64 {
	if c.ttl == 0 {
		return 0
	}
	return c.now().Add(c.ttl).UnixNano()
}

// store keeps resp under key (a detached request) and fp, unless it is
// larger than the entry limit; it reports whether it did.
func (c *Cache) store(h uint64, key *serving.Request, fp string, resp *serving.Response, expires int64, attrs *attrSet) bool {
	size := entrySize(key, fp, resp)
	if size > c.maxEntry {
		return false
	}
	c.l1.add(h, &entry{key: key, fp: fp, resp: resp, expires: expires, size: size, attrs: attrs})
	return true
}

// Purge drops every L1 entry. It does not touch Redis, whose entries other
// replicas share; give them a TTL or change the key prefix to retire them.
func (c *Cache) Purge() {
	c.l1.purge()
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	st := Stats{
		HitsL2:    c.n.hitsL2.Load(),
		Misses:    c.n.misses.Load(),
		Coalesced: c.n.coalesced.Load(),
		Bypassed:  c.n.bypassed.Load(),
		Entries:   c.entries.Load(),
		Bytes:     c.bytes.Load(),
	}
	st.HitsL1, st.Expired, st.Evictions = c.l1.counts()
	if c.l2 != nil {
		st.L2Errors = c.l2.errors.Load()
		st.L2Writes = c.l2.writes.Load()
		st.L2Dropped = c.l2.dropped.Load()
		st.L2Skipped = c.l2.skipped.Load()
		st.L2Rejected = c.l2.rejected.Load()
	}
	return st
}

// Close cancels the computations in flight and waits for them, stops the
// write-behind writers (pending writes are dropped) and unregisters the
// gauges. Middleware over a closed Cache passes requests straight to the
// model. Close is idempotent; it does not close the Redis client.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.flight.close()
		if c.l2 != nil {
			c.l2.close()
		}
		c.closeErr = errors.Join(c.tel.close())
	})
	return c.closeErr
}

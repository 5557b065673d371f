package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/servekit/servekit/serving"
)

// l2 is the Redis tier. Reads happen inside a flight, so concurrent misses
// share one; writes go through a bounded queue to a few writer goroutines, so
// they never delay a caller. A circuit skips Redis for a while after
// consecutive errors, so a dead Redis costs no timeouts on every miss.
type l2 struct {
	c       *Cache
	client  redis.UniversalClient
	cfg     l2config
	queue   chan l2write
	ctx     context.Context // cancelled by close: ends writes in progress
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	fails   atomic.Int64 // consecutive errors
	openTil atomic.Int64 // unix ns until which the circuit is open

	errors, writes, dropped, skipped atomic.Uint64
}

type l2write struct {
	key     []byte
	resp    *serving.Response
	expires int64
	attrs   *attrSet
}

func newL2(c *Cache, client redis.UniversalClient, cfg l2config) *l2 {
	l := &l2{c: c, client: client, cfg: cfg, queue: make(chan l2write, cfg.queue)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for range cfg.writers {
		l.wg.Go(l.writer)
	}
	return l
}

// redisKey names an entry: the prefix and the hex SHA-256 of the canonical
// key, stable across processes and builds, unlike the L1 hash.
func (l *l2) redisKey(key []byte) string {
	sum := sha256.Sum256(key)
	return l.cfg.prefix + hex.EncodeToString(sum[:])
}

// allow reports whether the circuit lets a call through: closed, or open for
// longer than the backoff (then calls try again; one success closes it, one
// error opens it for another backoff).
func (l *l2) allow() bool {
	if l.fails.Load() < int64(l.cfg.breakerErrors) {
		return true
	}
	return l.c.now().UnixNano() >= l.openTil.Load()
}

func (l *l2) result(ctx context.Context, err error, attrs *attrSet) {
	if err == nil {
		if l.fails.Load() != 0 {
			l.fails.Store(0)
		}
		return
	}
	l.errors.Add(1)
	if attrs != nil {
		l.c.tel.l2errors.Add(ctx, 1, attrs.plain...)
	}
	if l.fails.Add(1) >= int64(l.cfg.breakerErrors) {
		l.openTil.Store(l.c.now().Add(l.cfg.breakerBackoff).UnixNano())
	}
}

// get reads key's entry. Any failure is a miss: the model answers instead.
func (l *l2) get(ctx context.Context, key []byte, attrs *attrSet) (*serving.Response, int64, bool) {
	if !l.allow() {
		l.skipped.Add(1)
		return nil, 0, false
	}
	gctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	b, err := l.client.Get(gctx, l.redisKey(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		l.result(ctx, nil, attrs)
		return nil, 0, false
	case err != nil && ctx.Err() != nil:
		return nil, 0, false // the flight was abandoned: not Redis's fault
	}
	l.result(ctx, err, attrs)
	if err != nil {
		return nil, 0, false
	}
	resp, expires, ok, err := decodeEntry(b, key)
	if err != nil {
		// Corrupt or foreign data: count it, but Redis itself answered, so
		// the circuit stays as it is.
		l.errors.Add(1)
		l.c.tel.l2errors.Add(ctx, 1, attrs.plain...)
		return nil, 0, false
	}
	if !ok || (expires != 0 && l.c.now().UnixNano() >= expires) {
		return nil, 0, false
	}
	return resp, expires, true
}

// put queues a write, or drops it when the queue is full, the circuit open
// or the tier closed.
func (l *l2) put(key []byte, resp *serving.Response, expires int64, attrs *attrSet) {
	if l.closed.Load() || !l.allow() {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- l2write{key: key, resp: resp, expires: expires, attrs: attrs}:
	default:
		l.dropped.Add(1)
	}
}

func (l *l2) writer() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case w := <-l.queue:
			l.write(w)
		}
	}
}

func (l *l2) write(w l2write) {
	var ttl time.Duration
	if w.expires != 0 {
		ttl = time.Duration(w.expires - l.c.now().UnixNano())
		if ttl <= 0 {
			return
		}
	}
	if !l.allow() {
		l.dropped.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.timeout)
	defer cancel()
	err := l.client.Set(ctx, l.redisKey(w.key), encodeEntry(w.key, w.resp, w.expires), ttl).Err()
	if l.ctx.Err() != nil {
		l.dropped.Add(1) // cut short by close: not Redis's fault
		return
	}
	l.result(ctx, err, w.attrs)
	if err == nil {
		l.writes.Add(1)
	}
}

// close stops the writers; queued writes are dropped.
func (l *l2) close() {
	l.closed.Store(true)
	l.cancel()
	l.wg.Wait()
	l.dropped.Add(uint64(len(l.queue)))
}

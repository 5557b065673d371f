package cache

import (
	"context"
	"crypto/sha1" // not for security: to recognise a value already read
	"encoding/hex"
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
	limit   int64 // the largest value read: the entry bound
	queue   chan l2write
	ctx     context.Context // cancelled by close: ends writes in progress
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	fails   atomic.Int64 // consecutive errors
	openTil atomic.Int64 // unix ns until which the circuit is open

	errors, writes, dropped, skipped, rejected atomic.Uint64
}

// l2write is a job for the writers: an entry to write, or (bad set) a
// rejected value to delete.
type l2write struct {
	name    string // the Redis key
	key     *serving.Request
	fp      string
	resp    *serving.Response
	expires int64
	attrs   *attrSet
	bad     *badValue
}

// badValue identifies a rejected value without holding it: its length and
// the SHA-1 of its bytes, or of its first bytes when it was longer than the
// bound (partial).
type badValue struct {
	sha1    string
	n       int
	partial bool
}

func newL2(c *Cache, client redis.UniversalClient, cfg l2config) *l2 {
	l := &l2{c: c, client: client, cfg: cfg, limit: c.maxEntry, queue: make(chan l2write, cfg.queue)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for range cfg.writers {
		l.wg.Go(l.writer)
	}
	return l
}

// redisKey names an entry: the prefix and the hex SHA-256 of the canonical
// key, stable across processes and builds, unlike the L1 hash.
func (l *l2) redisKey(key *serving.Request, fp string) string {
	sum := sumKey(key, fp)
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

// get reads the entry of key under fp, named name. Any failure is a miss: the model
// answers instead. It reads at most the entry bound (plus one byte, to tell
// an oversized value), so a value planted in Redis costs no more memory than
// an honest one; a value that is oversized, fails authentication or does
// not parse is rejected: counted, and queued for deletion.
func (l *l2) get(ctx context.Context, name string, key *serving.Request, fp string, attrs *attrSet) (*serving.Response, int64, bool) {
	if !l.allow() {
		l.skipped.Add(1)
		return nil, 0, false
	}
	gctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	// GETRANGE answers "" for a missing key; no entry is empty.
	b, err := l.client.GetRange(gctx, name, 0, l.limit).Bytes()
	if err != nil && ctx.Err() != nil {
		return nil, 0, false // the flight was abandoned: not Redis's fault
	}
	l.result(ctx, err, attrs)
	if err != nil || len(b) == 0 {
		return nil, 0, false
	}
	if int64(len(b)) > l.limit {
		l.reject(ctx, name, b, true, errOversized, attrs)
		return nil, 0, false
	}
	resp, expires, ok, err := decodeEntry(b, key, fp, l.cfg.keys)
	if err != nil {
		l.reject(ctx, name, b, false, err, attrs)
		return nil, 0, false
	}
	if !ok || (expires != 0 && l.c.now().UnixNano() >= expires) {
		return nil, 0, false
	}
	return resp, expires, true
}

// reject counts a bad value and queues its deletion. Redis itself answered,
// so the circuit stays as it is.
func (l *l2) reject(ctx context.Context, name string, b []byte, partial bool, why error, attrs *attrSet) {
	n := l.rejected.Add(1)
	l.c.tel.l2rejected.Add(ctx, 1, attrs.plain...)
	if n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th…: a flood of them stays a few lines
		l.c.log.Warn("cache: L2 entry rejected: a miss, and deleted", "key", name, "bytes", len(b), "reason", why.Error(), "rejected", n)
	}
	sum := sha1.Sum(b)
	l.enqueue(l2write{name: name, bad: &badValue{hex.EncodeToString(sum[:]), len(b), partial}, attrs: attrs})
}

// put queues a write of key's entry under fp, named name, or drops it when
// the queue is full, the circuit open or the tier closed.
func (l *l2) put(name string, key *serving.Request, fp string, resp *serving.Response, expires int64, attrs *attrSet) {
	l.enqueue(l2write{name: name, key: key, fp: fp, resp: resp, expires: expires, attrs: attrs})
}

func (l *l2) enqueue(w l2write) {
	if l.closed.Load() || !l.allow() {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- w:
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
	if w.bad != nil {
		l.remove(w)
		return
	}
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
	err := l.client.Set(ctx, w.name, encodeEntry(w.key, w.fp, w.resp, w.expires, l.cfg.keys[0]), ttl).Err()
	if l.ctx.Err() != nil {
		l.dropped.Add(1) // cut short by close: not Redis's fault
		return
	}
	l.result(ctx, err, w.attrs)
	if err == nil {
		l.writes.Add(1)
	}
}

// removeBad deletes a rejected value, unless it has changed since it was
// read (another replica's honest write replaced it): the value compares by
// length and SHA-1 of its first bytes, so the bad bytes need not travel
// back. An oversized value compares by its prefix only.
var removeBad = redis.NewScript(`
local v = redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #v ~= tonumber(ARGV[2]) or redis.sha1hex(v) ~= ARGV[1] then return 0 end
if ARGV[3] ~= '1' and redis.call('STRLEN', KEYS[1]) ~= #v then return 0 end
return redis.call('DEL', KEYS[1])
`)

func (l *l2) remove(w l2write) {
	if !l.allow() {
		l.dropped.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.timeout)
	defer cancel()
	partial := "0"
	if w.bad.partial {
		partial = "1"
	}
	err := removeBad.Run(ctx, l.client, []string{w.name}, w.bad.sha1, w.bad.n, partial).Err()
	if l.ctx.Err() != nil {
		l.dropped.Add(1)
		return
	}
	l.result(ctx, err, w.attrs)
}

// close stops the writers; queued writes are dropped.
func (l *l2) close() {
	l.closed.Store(true)
	l.cancel()
	l.wg.Wait()
	l.dropped.Add(uint64(len(l.queue)))
}

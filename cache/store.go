package cache

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/servekit/servekit/serving"
)

// entry is one cached answer. It is immutable once stored, so it is read
// outside the lock.
type entry struct {
	key     *serving.Request  // the detached request it answers: its key, compared on every hit
	fp      string            // the model's fingerprint, part of the key
	resp    *serving.Response // shared by every hit: read-only
	expires int64             // unix nanoseconds; 0 never
	size    int64             // approximate bytes, key and response
	attrs   *attrSet          // for the eviction metric
}

// entryOverhead approximates what an entry costs beyond its key and tensor
// data: the entry, the Response, the LRU's list element and map slot.
const entryOverhead = 256

// tensorOverhead approximates a Tensor header and its data's slice header.
const tensorOverhead = 96

func entrySize(key *serving.Request, fp string, resp *serving.Response) int64 {
	n := int64(entryOverhead + keySize(key, fp) + len(resp.ID) + len(resp.Model) + len(resp.Version))
	for i := range key.Inputs {
		n += tensorOverhead
		if key.Inputs[i].DataType == serving.Bytes {
			n += 24 * int64(key.Inputs[i].Len())
		}
	}
	for i := range resp.Outputs {
		t := &resp.Outputs[i]
		n += int64(tensorOverhead + len(t.Name) + 8*len(t.Shape) + t.RawSize())
		if t.DataType == serving.Bytes {
			n += 24 * int64(t.Len()) // a slice header per element
		}
	}
	return n
}

// store is L1: one LRU and its lock. simplelru's Get reorders the list, so
// every lookup takes the lock; it is held for the map lookup and the list
// move (~30 ns), and the key is compared outside it. One lock, not
// shards: see "Bounds and TTL" in the package doc for the measurement.
type store struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[uint64, *entry] // guarded by mu; keyed by the slot hash
	bytes    int64                          // guarded by mu
	maxBytes int64
	found    uint64 // guarded by mu; hits = found - collided
	collided atomic.Uint64
	expired  uint64 // guarded by mu
	evicted  uint64 // guarded by mu
	// evicting is the entry being removed for capacity: the eviction
	// callback reports it to the metrics. Guarded by mu.
	evicting bool
	c        *Cache
}

func newStore(c *Cache, maxEntries int, maxBytes int64) *store {
	s := &store{maxBytes: maxBytes, c: c}
	// The callback runs under s.mu for every removal: capacity, expiry,
	// replacement and Purge alike.
	lru, err := simplelru.NewLRU(maxEntries, func(_ uint64, e *entry) {
		s.bytes -= e.size
		c.bytes.Add(-e.size)
		c.entries.Add(-1)
		if s.evicting {
			s.evicted++
			c.tel.evicted(e.attrs)
		}
	})
	if err != nil {
		panic(err) // unreachable: New checks maxEntries > 0
	}
	s.lru = lru
	return s
}

// get returns the live entry for req under fp in slot h, or nil. now is
// unix nanoseconds, or 0 when no entry can expire. The key is compared after
// the lock is released (the entry is immutable), so a large input never
// holds the lock.
func (s *store) get(h uint64, req *serving.Request, fp string, now int64) *entry {
	s.mu.Lock()
	e, ok := s.lru.Get(h)
	if !ok {
		s.mu.Unlock()
		return nil
	}
	if e.expires != 0 && now >= e.expires {
		s.lru.Remove(h)
		s.expired++
		s.mu.Unlock()
		return nil
	}
	s.found++
	s.mu.Unlock()
	// Another input can share the slot when hashes collide: only the full
	// key decides. A mismatch is a miss; the miss's answer replaces it.
	if !sameKey(e.key, e.fp, req, fp) {
		s.collided.Add(1) // rare: counted apart, so a hit costs no atomic
		return nil
	}
	return e
}

// add stores e in slot h, replacing whatever is there, then evicts the least
// recently used entries until the store is within its bounds.
func (s *store) add(h uint64, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Remove(h) // a replaced entry is not an eviction
	s.evicting = true
	for s.bytes+e.size > s.maxBytes && s.lru.Len() > 0 {
		s.lru.RemoveOldest()
	}
	s.lru.Add(h, e) // evicts the oldest when the store is full of entries
	s.evicting = false
	s.bytes += e.size
	s.c.bytes.Add(e.size)
	s.c.entries.Add(1)
}

func (s *store) purge() {
	s.mu.Lock()
	s.lru.Purge()
	s.mu.Unlock()
}

func (s *store) counts() (hits, expired, evicted uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.found - s.collided.Load(), s.expired, s.evicted
}

// counters are the Cache-wide counts kept outside the store.
type counters struct {
	hitsL2, misses, coalesced, bypassed atomic.Uint64
}

package quality

// slot is one remembered prediction; its scores live beside it in the
// ring's score chunk. 48 bytes.
type slot struct {
	key   uint64  // the hash of its id; 0: no id (kept for estimates only)
	prev  uint64  // the seq of the previous prediction with the same id, 0 if none
	at    int64   // when it was answered, Unix ns
	lt    int64   // when its label arrived, Unix ns; 0 while unlabelled
	label float64 // valid when lt != 0
	win   uint32  // its window's index (low 32 bits) in its tracker
	ver   uint16  // its tracker (model version) in the model
	newer bool    // a newer prediction has the same id: the index points there
}

// SlotBytes is the ring's fixed cost per remembered prediction, scores
// aside (8 bytes each).
const SlotBytes = 48

const chunkSlots = 1024

// ring remembers one model's most recent predictions, oldest first, up to
// cap of them: a FIFO of fixed-size slots numbered by seq (from 1), so a
// prediction is found again by its seq while it is remembered (head <= seq
// < next) and a link to a forgotten one is recognised as such. Memory is
// allocated a chunk at a time as the ring fills, never beyond cap. Only
// the worker goroutine touches it.
type ring struct {
	width      int
	cap        uint64
	slots      [][]slot
	scores     [][]float64
	head, next uint64
	headPos    uint64 // head's position in the slots: positions follow seqs, wrapping at cap
	index      index  // id hash → newest seq with it
}

func newRing(width, capacity int) *ring {
	return &ring{width: width, cap: uint64(capacity), head: 1, next: 1}
}

func (r *ring) len() uint64 { return r.next - r.head }

func (r *ring) has(seq uint64) bool { return seq >= r.head && seq < r.next }

// at returns seq's slot and scores; seq must be remembered (or next, in
// push). Its position is head's plus the distance, wrapped: a compare
// where a modulo by cap would cost a division on every access.
func (r *ring) at(seq uint64) (*slot, []float64) {
	p := r.headPos + (seq - r.head)
	if p >= r.cap {
		p -= r.cap
	}
	c, i := p/chunkSlots, int(p%chunkSlots)
	return &r.slots[c][i], r.scores[c][i*r.width : (i+1)*r.width]
}

func (r *ring) full() bool { return r.len() == r.cap }

// push remembers a prediction and returns its seq and its scores to fill;
// the ring must not be full (pop first).
func (r *ring) push(s slot) (seq uint64, scores []float64) {
	p := r.headPos + r.len()
	if p >= r.cap {
		p -= r.cap
	}
	if c := p / chunkSlots; c == uint64(len(r.slots)) {
		n := min(chunkSlots, r.cap-c*chunkSlots)
		r.slots = append(r.slots, make([]slot, n))
		r.scores = append(r.scores, make([]float64, int(n)*r.width))
	}
	seq = r.next
	r.next++
	if s.key != 0 {
		if s.prev = r.index.put(s.key, seq); r.has(s.prev) {
			p, _ := r.at(s.prev)
			p.newer = true
		}
	}
	sl, sc := r.at(seq)
	*sl = s
	return seq, sc
}

// pop forgets the oldest prediction.
func (r *ring) pop() *slot {
	s, _ := r.at(r.head)
	if s.key != 0 && !s.newer {
		r.index.del(s.key)
	}
	r.head++
	if r.headPos++; r.headPos == r.cap {
		r.headPos = 0
	}
	return s
}

// find calls f with each remembered prediction that has the id hash key,
// newest first.
func (r *ring) find(key uint64, f func(seq uint64, s *slot, scores []float64)) {
	for seq := r.index.get(key); r.has(seq); {
		s, sc := r.at(seq)
		if s.key != key {
			return // unreachable: a chain holds one key
		}
		f(seq, s, sc)
		seq = s.prev
	}
}

// index maps id hashes to seqs: an open-addressing table with linear
// probing, a power of two in size and at most half full, deleting by
// backward shift so no tombstone lengthens a probe. A key and its value
// share one 16-byte entry, so a lookup in a table too big for the cache
// costs one miss; the keys being hashes already, it spends no time
// hashing. Per remembered id it holds 32 to 64 bytes (half to a quarter
// full).
type index struct {
	e []entry // key 0: empty (a key is never 0)
	n int
}

type entry struct{ key, val uint64 }

// get returns key's value, 0 when absent.
func (x *index) get(key uint64) uint64 {
	if x.n == 0 {
		return 0
	}
	mask := uint64(len(x.e) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch x.e[i].key {
		case key:
			return x.e[i].val
		case 0:
			return 0
		}
	}
}

// put sets key to v and returns its old value (0 when it had none).
func (x *index) put(key, v uint64) uint64 {
	if 2*(x.n+1) > len(x.e) {
		x.grow()
	}
	mask := uint64(len(x.e) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		switch e := &x.e[i]; e.key {
		case key:
			old := e.val
			e.val = v
			return old
		case 0:
			*e = entry{key, v}
			x.n++
			return 0
		}
	}
}

// del removes key, shifting back the entries of its probe run that would
// otherwise be cut off from their home slot.
func (x *index) del(key uint64) {
	if x.n == 0 {
		return
	}
	mask := uint64(len(x.e) - 1)
	i := key & mask
	for ; x.e[i].key != key; i = (i + 1) & mask {
		if x.e[i].key == 0 {
			return
		}
	}
	x.n--
	for j := (i + 1) & mask; x.e[j].key != 0; j = (j + 1) & mask {
		// Move j into the hole at i unless j's home lies cyclically in
		// (i, j]: then it is still reachable from its home.
		home := x.e[j].key & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.e[i] = x.e[j]
			i = j
		}
	}
	x.e[i] = entry{}
}

// touch reads the entry where key's probe starts, so that its cache line
// is on its way before put or del needs it: called for a batch of keys
// first, the misses overlap instead of coming one after another.
func (x *index) touch(key uint64) uint64 {
	if len(x.e) == 0 {
		return 0
	}
	return x.e[key&uint64(len(x.e)-1)].key
}

// prefetch touches the index entries that taking the next n predictions
// with keys will need: their own, and those of the n oldest remembered
// ones, which a full ring forgets on the way. It returns what it read so
// the reads are not optimised away.
func (r *ring) prefetch(keys func(i int) uint64, n int) (sink uint64) {
	for i := range n {
		if k := keys(i); k != 0 {
			sink += r.index.touch(k)
		}
	}
	if forget := int(min(uint64(n), r.len())) - int(r.cap-r.len()); forget > 0 {
		for seq := r.head; seq < r.head+uint64(forget); seq++ {
			if s, _ := r.at(seq); s.key != 0 {
				sink += r.index.touch(s.key)
			}
		}
	}
	return sink
}

func (x *index) grow() {
	old := x.e
	x.e, x.n = make([]entry, max(16, 2*len(old))), 0
	for _, e := range old {
		if e.key != 0 {
			x.put(e.key, e.val)
		}
	}
}

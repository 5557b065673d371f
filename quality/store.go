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
	index      map[uint64]uint64 // id hash → newest seq with it
}

func newRing(width, capacity int) *ring {
	return &ring{width: width, cap: uint64(capacity), head: 1, next: 1, index: map[uint64]uint64{}}
}

func (r *ring) len() uint64 { return r.next - r.head }

func (r *ring) has(seq uint64) bool { return seq >= r.head && seq < r.next }

// at returns seq's slot and scores; seq must be remembered.
func (r *ring) at(seq uint64) (*slot, []float64) {
	p := (seq - 1) % r.cap
	c, i := p/chunkSlots, int(p%chunkSlots)
	return &r.slots[c][i], r.scores[c][i*r.width : (i+1)*r.width]
}

func (r *ring) full() bool { return r.len() == r.cap }

// push remembers a prediction and returns its seq and its scores to fill;
// the ring must not be full (pop first).
func (r *ring) push(s slot) (seq uint64, scores []float64) {
	p := (r.next - 1) % r.cap
	if c := p / chunkSlots; c == uint64(len(r.slots)) {
		n := min(chunkSlots, r.cap-c*chunkSlots)
		r.slots = append(r.slots, make([]slot, n))
		r.scores = append(r.scores, make([]float64, int(n)*r.width))
	}
	seq = r.next
	r.next++
	if s.key != 0 {
		s.prev = r.index[s.key]
		r.index[s.key] = seq
	}
	sl, sc := r.at(seq)
	*sl = s
	return seq, sc
}

// pop forgets the oldest prediction.
func (r *ring) pop() *slot {
	s, _ := r.at(r.head)
	if s.key != 0 && r.index[s.key] == r.head {
		delete(r.index, s.key)
	}
	r.head++
	return s
}

// find calls f with each remembered prediction that has the id hash key,
// newest first.
func (r *ring) find(key uint64, f func(seq uint64, s *slot, scores []float64)) {
	for seq := r.index[key]; r.has(seq); {
		s, sc := r.at(seq)
		if s.key != key {
			return // unreachable: a chain holds one key
		}
		f(seq, s, sc)
		seq = s.prev
	}
}

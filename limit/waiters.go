package limit

// waiter is one queued request. Its fields other than ready are guarded by
// Limiter.mu.
type waiter struct {
	ready      chan struct{} // buffered 1: a slot was handed over
	granted    bool          // handed a slot (ready has a value)
	dropped    bool          // taken off the queue by Close
	prev, next *waiter
}

// waiters is an intrusive FIFO list: a request that gives up leaves from
// anywhere in O(1), and a queue of any bound costs nothing until used.
type waiters struct {
	head, tail *waiter
	n          int
}

func (q *waiters) push(w *waiter) {
	w.prev, w.next = q.tail, nil
	if q.tail == nil {
		q.head = w
	} else {
		q.tail.next = w
	}
	q.tail = w
	q.n++
}

// pop removes and returns the oldest waiter, or nil.
func (q *waiters) pop() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

// remove takes w, which must be queued, off the list.
func (q *waiters) remove(w *waiter) {
	if w.prev == nil {
		q.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		q.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	q.n--
}

package batch

import (
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

type itemState uint8

const (
	queued   itemState = iota
	running            // in a dispatched batch
	retrying           // in a group, to run again after its batch failed or was ended
	done               // answered
	left               // its caller gave up
)

// item is one queued request (or one chunk of an oversize request). Items
// are pooled: the caller puts its item back once it has read the answer,
// never when it left early (the runner may still hold it then).
type item struct {
	req   *serving.Request
	rows  int64
	level int // 0 is the highest priority
	enq   time.Time
	res   chan result // cap 1: the answer never blocks the runner
	q     *queue      // guarded by Batcher.mu; while queued
	last  bool        // the caller's last chunk: its answer lets the caller go
	// limit is the caller's deadline; without one, it is set at the first
	// run to that run's start plus the max run time (limitLocked).
	limit time.Time // guarded by Batcher.mu

	span   trace.Span        // batch.queue; nil for later chunks
	parent trace.SpanContext // the caller's span, for batch.run's parent and links
	timing *serving.Timing   // the caller's, if a transport keeps one: queue and compute time go there

	state   itemState // guarded by Batcher.mu
	batch   *batch    // guarded by Batcher.mu; set when dispatched
	grp     *group    // guarded by Batcher.mu; while retrying
	counted bool      // guarded by Batcher.mu: its answer was counted in Batcher.pending
	// kept: it was in a run the scheduler ended, whose goroutine may still
	// read it when the model returns; it never goes back to the pool.
	kept bool // guarded by Batcher.mu
}

var itemPool = sync.Pool{New: func() any { return &item{res: make(chan result, 1)} }}

func newItem() *item { return itemPool.Get().(*item) }

// free returns an item whose answer its caller has read.
func (it *item) free() {
	res := it.res
	*it = item{res: res}
	itemPool.Put(it)
}

type result struct {
	resp *serving.Response
	err  error
}

// queue holds the waiting items of one batch key, FIFO per priority level.
type queue struct {
	hash   uint64
	next   *queue // another key with the same hash
	levels [][]*item
	rows   int64
}

func newQueue(hash uint64, levels int) *queue {
	return &queue{hash: hash, levels: make([][]*item, levels)}
}

func (q *queue) push(it *item) {
	it.q = q
	q.levels[it.level] = append(q.levels[it.level], it)
	q.rows += it.rows
}

func (q *queue) empty() bool { return q.rows == 0 && q.count() == 0 }

func (q *queue) count() int {
	n := 0
	for _, l := range q.levels {
		n += len(l)
	}
	return n
}

func (q *queue) remove(it *item) {
	l := q.levels[it.level]
	if i := slices.Index(l, it); i >= 0 {
		q.levels[it.level] = slices.Delete(l, i, i+1)
		q.rows -= it.rows
	}
}

func (q *queue) all() []*item {
	var all []*item
	for _, l := range q.levels {
		all = append(all, l...)
	}
	return all
}

// oldest is the enqueue time of the oldest waiting item: the max delay runs
// from it. Levels are FIFO, so it is the earliest of their heads.
func (q *queue) oldest() time.Time {
	var t time.Time
	for _, l := range q.levels {
		if len(l) > 0 && (t.IsZero() || l[0].enq.Before(t)) {
			t = l[0].enq
		}
	}
	return t
}

// head is the item that would run first: the oldest of the highest level.
func (q *queue) head() *item {
	for _, l := range q.levels {
		if len(l) > 0 {
			return l[0]
		}
	}
	return nil
}

// take removes items in priority order, FIFO within a level, while they fit
// in limit rows; it stops at the first that does not fit, so nobody is
// overtaken by a smaller request of the same or a lower level. It always
// takes at least one item.
func (q *queue) take(limit int64) []*item {
	var out []*item
	var rows int64
	for lv, l := range q.levels {
		n := 0
		for _, it := range l {
			if len(out) > 0 && rows+it.rows > limit {
				break
			}
			out = append(out, it)
			rows += it.rows
			n++
		}
		clear(l[:n])
		q.levels[lv] = l[n:]
		if n < len(l) {
			break
		}
	}
	q.rows -= rows
	return out
}

// keyHash and sameKey say which requests may share a run: the same model
// and version, input names with their datatypes and non-batch dims,
// requested outputs (in order) and parameters other than the batcher's own.
// The hash finds a queue; sameKey confirms the match against the queue's
// head, so a collision never joins unlike requests. Neither allocates for
// the usual parameter types: a string key built per request cost about as
// much as running a small model.
func keyHash(req *serving.Request) uint64 {
	h := mix(maphash.String(keySeed, req.Model), maphash.String(keySeed, req.Version))
	for _, o := range req.Outputs {
		h = mix(h, maphash.String(keySeed, o))
	}
	// Inputs and parameters are unordered: sum their hashes.
	for _, t := range req.Inputs {
		th := mix(maphash.String(keySeed, t.Name), uint64(t.DataType)<<8|uint64(len(t.Shape)))
		for _, d := range t.Shape[min(1, len(t.Shape)):] {
			th = mix(th, uint64(d))
		}
		h += th
	}
	for k, v := range req.Params {
		if k == serving.ParamPriority || k == serving.ParamTimeout {
			continue
		}
		var vh uint64
		switch v := v.(type) {
		case string:
			vh = mix(1, maphash.String(keySeed, v))
		case int64:
			vh = mix(2, uint64(v))
		case float64:
			vh = mix(3, math.Float64bits(v))
		case bool:
			vh = 4
			if v {
				vh = 5
			}
		default:
			vh = maphash.String(keySeed, fmt.Sprintf("%T:%v", v, v)) // rare: other types allocate
		}
		h += mix(maphash.String(keySeed, k), vh)
	}
	return h
}

// mix folds x into h (a multiply-xorshift step: cheap, and enough for a
// hash that sameKey confirms).
func mix(h, x uint64) uint64 {
	h ^= x + 0x9e3779b97f4a7c15 + h<<6 + h>>2
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>31
}

var keySeed = maphash.MakeSeed()

// sameKey reports whether a and b may share a run (see keyHash).
func sameKey(a, b *serving.Request) bool {
	if a.Model != b.Model || a.Version != b.Version || len(a.Inputs) != len(b.Inputs) ||
		!slices.Equal(a.Outputs, b.Outputs) {
		return false
	}
	for _, t := range a.Inputs {
		u, ok := b.Input(t.Name)
		if !ok || t.DataType != u.DataType || len(t.Shape) != len(u.Shape) ||
			(len(t.Shape) > 0 && !slices.Equal(t.Shape[1:], u.Shape[1:])) {
			return false
		}
	}
	return sameParams(a.Params, b.Params) && sameParams(b.Params, a.Params)
}

// sameParams reports whether every parameter of a, other than the
// batcher's own, is in b with an equal value of the same type.
func sameParams(a, b serving.Params) bool {
	for k, v := range a {
		if k == serving.ParamPriority || k == serving.ParamTimeout {
			continue
		}
		w, ok := b[k]
		if !ok {
			return false
		}
		switch v.(type) {
		case string, int64, float64, bool:
			if v != w {
				return false
			}
		default:
			if !reflect.DeepEqual(v, w) {
				return false
			}
		}
	}
	return true
}

// split cuts a request of more than maxRows rows into chunks of at most
// maxRows rows that share its data.
func split(req *serving.Request, rows, maxRows int64) ([]*serving.Request, error) {
	if rows <= maxRows {
		return []*serving.Request{req}, nil
	}
	var out []*serving.Request
	for lo := int64(0); lo < rows; lo += maxRows {
		hi := min(lo+maxRows, rows)
		c := req.Clone()
		for i, t := range req.Inputs {
			r, err := t.Rows(lo, hi)
			if err != nil {
				return nil, err
			}
			c.Inputs[i] = r
		}
		out = append(out, c)
	}
	return out, nil
}

// join builds the request a batch runs: each input concatenated along
// dimension 0 in the members' order.
func join(items []*item) (*serving.Request, error) {
	first := items[0].req
	j := &serving.Request{Model: first.Model, Version: first.Version, Outputs: first.Outputs, Params: first.Params,
		Inputs: make([]serving.Tensor, len(first.Inputs))}
	parts := make([]serving.Tensor, len(items))
	for i, in := range first.Inputs {
		for k, it := range items {
			t, ok := it.req.Input(in.Name)
			if !ok {
				return nil, serving.Errorf(serving.Internal, "batch: member lacks input %q", in.Name)
			}
			parts[k] = t
		}
		t, err := serving.ConcatRows(parts)
		if err != nil {
			return nil, err
		}
		j.Inputs[i] = t
	}
	return j, nil
}

// splitResponse hands each member its rows of a joined answer: views of
// the joined outputs (Tensor.Rows shares the data), with the members'
// Response values and output slices carved from one allocation each.
func splitResponse(resp *serving.Response, items []*item, total int64) ([]result, error) {
	for _, o := range resp.Outputs {
		if len(o.Shape) == 0 || o.Shape[0] != total {
			return nil, serving.Errorf(serving.Internal, "batch: output %q has shape %v, want %d rows", o.Name, o.Shape, total)
		}
	}
	n := len(resp.Outputs)
	rs := make([]serving.Response, len(items))
	outs := make([]serving.Tensor, len(items)*n)
	out := make([]result, len(items))
	var lo int64
	for k, it := range items {
		r := &rs[k]
		*r = serving.Response{ID: it.req.ID, Model: resp.Model, Version: resp.Version, Params: resp.Params,
			Outputs: outs[k*n : (k+1)*n : (k+1)*n]}
		for i, o := range resp.Outputs {
			t, err := o.Rows(lo, lo+it.rows)
			if err != nil {
				return nil, err
			}
			r.Outputs[i] = t
		}
		lo += it.rows
		out[k] = result{resp: r}
	}
	return out, nil
}

// concatResponses joins the answers to an oversize request's chunks.
func concatResponses(req *serving.Request, resps []*serving.Response) (*serving.Response, error) {
	first := resps[0]
	r := &serving.Response{ID: req.ID, Model: first.Model, Version: first.Version, Params: first.Params,
		Outputs: make([]serving.Tensor, len(first.Outputs))}
	parts := make([]serving.Tensor, len(resps))
	for i, o := range first.Outputs {
		for k, resp := range resps {
			t, ok := resp.Output(o.Name)
			if !ok {
				return nil, serving.Errorf(serving.Internal, "batch: chunk answer lacks output %q", o.Name)
			}
			parts[k] = t
		}
		t, err := serving.ConcatRows(parts)
		if err != nil {
			return nil, err
		}
		r.Outputs[i] = t
	}
	return r, nil
}

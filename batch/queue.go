package batch

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/servekit/servekit/serving"
)

type itemState uint8

const (
	queued  itemState = iota
	running           // in a dispatched batch
	done              // answered
	left              // its caller gave up
)

// item is one queued request (or one chunk of an oversize request).
type item struct {
	req   *serving.Request
	rows  int64
	level int // 0 is the highest priority
	key   string
	enq   time.Time
	res   chan result // cap 1: the answer never blocks the runner

	span   trace.Span        // batch.queue; nil for later chunks
	parent trace.SpanContext // the caller's span, for batch.run's parent and links

	state itemState // guarded by Batcher.mu
	batch *batch    // guarded by Batcher.mu; set when dispatched
}

type result struct {
	resp *serving.Response
	err  error
}

// queue holds the waiting items of one batch key, FIFO per priority level.
type queue struct {
	key    string
	levels [][]*item
	rows   int64
}

func newQueue(key string, levels int) *queue {
	return &queue{key: key, levels: make([][]*item, levels)}
}

func (q *queue) push(it *item) {
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

// batchKey says which requests may share a run: the same model and
// version, input names with their datatypes and non-batch dims, requested
// outputs (in order) and parameters other than the batcher's own.
func batchKey(req *serving.Request) string {
	var b strings.Builder
	b.WriteString(req.Model)
	b.WriteByte(0)
	b.WriteString(req.Version)
	b.WriteByte(0)
	ins := req.Inputs
	if len(ins) > 1 {
		ins = slices.Clone(ins)
		slices.SortFunc(ins, func(a, b serving.Tensor) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, t := range ins {
		b.WriteString(t.Name)
		b.WriteByte(1)
		b.WriteString(t.DataType.String())
		for _, d := range t.Shape[1:] {
			b.WriteByte(',')
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteByte(0)
	}
	b.WriteByte(2)
	for _, o := range req.Outputs {
		b.WriteString(o)
		b.WriteByte(0)
	}
	if len(req.Params) > 0 {
		b.WriteByte(3)
		keys := make([]string, 0, len(req.Params))
		for k := range req.Params {
			if k != serving.ParamPriority && k != serving.ParamTimeout {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%T:%v\x00", k, req.Params[k], req.Params[k])
		}
	}
	return b.String()
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

// splitResponse hands each member its rows of a joined answer.
func splitResponse(resp *serving.Response, items []*item, total int64) ([]*serving.Response, error) {
	for _, o := range resp.Outputs {
		if len(o.Shape) == 0 || o.Shape[0] != total {
			return nil, serving.Errorf(serving.Internal, "batch: output %q has shape %v, want %d rows", o.Name, o.Shape, total)
		}
	}
	out := make([]*serving.Response, len(items))
	var lo int64
	for k, it := range items {
		r := &serving.Response{ID: it.req.ID, Model: resp.Model, Version: resp.Version, Params: resp.Params,
			Outputs: make([]serving.Tensor, len(resp.Outputs))}
		for i, o := range resp.Outputs {
			t, err := o.Rows(lo, lo+it.rows)
			if err != nil {
				return nil, err
			}
			r.Outputs[i] = t
		}
		lo += it.rows
		out[k] = r
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

package onnx

import (
	"context"
	"runtime"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// Every run works on a frame: the run's input and output values, the
// outputs' shapes, and run options to stop it with. Frames are pooled, so
// a run builds no slices of its own.
//
// Wrapping a request's slice in an ONNX Runtime value, and an output slice
// in another, costs two cgo calls each (create and release, about 0.5 µs a
// pair here) and three allocations, while copying a few KiB costs a few
// hundred nanoseconds. So for a model whose tensors are all numeric with
// only dim 0 dynamic, frames are kept per batch size, and each holds
// preallocated ONNX Runtime values for the tensors of up to
// frameBytesPerTensor at that size: such an input is copied in, such an
// output is copied out into a fresh slice the response owns (pooled memory
// never reaches a caller). Larger tensors keep the zero-copy path within
// the same frame: ONNX Runtime reads the request's slice and writes into
// the response's. Frames live in sync.Pools; a frame a pool drops has its
// ONNX Runtime values released by a runtime cleanup. Other requests (a
// string tensor, other dynamic dims, zero rows, more than maxFrameBatch
// rows) take a bare frame, which pools nothing but its slices.

// frameBytesPerTensor bounds the copy a pooled tensor may cost.
const frameBytesPerTensor = 4 << 10

// maxFrameBatch bounds the batch sizes with frames of their own; larger
// batches amortise the per-call costs and take bare frames.
const maxFrameBatch = 256

type frame struct {
	ins, outs []ort.Value // what the run gets
	own       []ort.Value // ins then outs: the frame's values, nil where made per call
	inBuf     [][]byte    // byte views of the buffers behind own's inputs
	outBuf    [][]byte    // and outputs
	outShape  [][]int64   // each output's shape if known before the run, else nil
	dims      []int64     // backs outShape
	slots     []slot      // how each output of this run is held
	res       *frameRes
	pool      *sync.Pool // where the frame goes back to

	// While listed by the model's watcher (watch.go), under its lock: the
	// run's ctx, the frame's index in the list, and whether the watcher
	// set the terminate flag.
	ctx        context.Context
	at         int
	terminated bool

	// made: the run put values of its own in ins or outs, or slots that
	// hold its response's memory; reset has nothing to undo otherwise.
	made bool
}

// frameRes is what a dropped frame's cleanup releases.
type frameRes struct {
	vals []ort.Value // the frame's own
	ro   *ort.RunOptions
}

func (r *frameRes) release() {
	destroy(r.vals)
	if r.ro != nil {
		r.ro.Destroy()
	}
}

// framePools holds a pool per batch size (index 0 for a model without a
// batch dim): an array, as a map lookup cost more than the copy it saves.
type framePools struct {
	ok    bool // decided at load: every tensor numeric, rank >= 1, only dim 0 dynamic
	pools *[maxFrameBatch + 1]sync.Pool
	bare  sync.Pool
}

func (m *Model) initFrames() {
	m.frames.ok = len(m.md.Inputs) > 0
	m.frames.pools = new([maxFrameBatch + 1]sync.Pool)
	specs := slices.Clone(m.md.Inputs)
	for _, o := range m.outs {
		specs = append(specs, o.spec)
	}
	for _, s := range specs {
		if s.DataType == serving.Bytes || len(s.Shape) == 0 || slices.Contains(s.Shape[1:], -1) {
			m.frames.ok = false
		}
	}
}

// frameFor returns a frame for a validated request of batch rows (-1 for
// a model without a batch dim). Give it back with putFrame.
func (m *Model) frameFor(batch int64) *frame {
	if m.frames.ok && batch != 0 && batch <= maxFrameBatch {
		p := &m.frames.pools[max(batch, 0)]
		if f, ok := p.Get().(*frame); ok {
			return f
		}
		if f, err := m.newFrame(batch, p); err == nil {
			return f
		}
		// A bare frame will report the problem, if any.
	}
	f, ok := m.frames.bare.Get().(*frame)
	if !ok {
		f = m.bareFrame()
	}
	m.setShapes(f, batch)
	return f
}

func (m *Model) putFrame(f *frame) { f.pool.Put(f) }

// bareFrame makes a frame with no values of its own.
func (m *Model) bareFrame() *frame {
	nIn, nOut := len(m.md.Inputs), len(m.outs)
	vals := make([]ort.Value, 2*(nIn+nOut))
	f := &frame{
		ins: vals[:nIn:nIn], outs: vals[nIn : nIn+nOut : nIn+nOut], own: vals[nIn+nOut:],
		inBuf: make([][]byte, nIn), outBuf: make([][]byte, nOut),
		outShape: make([][]int64, nOut), slots: make([]slot, nOut),
		res: &frameRes{}, pool: &m.frames.bare,
	}
	rank := 0
	for _, o := range m.outs {
		rank += len(o.spec.Shape)
	}
	// Never nil, so that a known rank-0 shape is empty, not nil (unknown).
	f.dims = make([]int64, rank)
	runtime.AddCleanup(f, (*frameRes).release, f.res)
	return f
}

// setShapes sets f's output shapes for a batch of batch rows (-1: no
// batch dim): the declared shape when fixed, with dim 0 set to the batch
// when only that dim is dynamic, otherwise nil (only the run can tell).
// Strings are always nil: ONNX Runtime keeps them in memory of its own.
func (m *Model) setShapes(f *frame, batch int64) {
	dims := f.dims
	for j, o := range m.outs {
		s := dims[:len(o.spec.Shape):len(o.spec.Shape)]
		dims = dims[len(s):]
		switch {
		case o.spec.DataType == serving.Bytes:
			s = nil
		case o.static:
			copy(s, o.spec.Shape)
		case o.batchDim && batch >= 0:
			copy(s, o.spec.Shape)
			s[0] = batch
		default:
			s = nil
		}
		f.outShape[j] = s
	}
}

// newFrame makes a frame for batch rows with values of its own for the
// tensors of up to frameBytesPerTensor.
func (m *Model) newFrame(batch int64, pool *sync.Pool) (*frame, error) {
	f := m.bareFrame()
	f.pool = pool
	m.setShapes(f, batch)
	nIn := len(m.md.Inputs)
	alloc := func(s serving.TensorSpec, shape []int64) (ort.Value, []byte, error) {
		n := m.rowsOf(s.Shape, batch)
		if shape == nil || n*int64(s.DataType.Size()) > frameBytesPerTensor {
			return nil, nil, nil
		}
		v, data, err := newOutput(s.DataType, shape, int(n))
		if err != nil {
			return nil, nil, err
		}
		t, err := serving.FromSlice(s.Name, s.DataType, shape, data)
		if err != nil {
			v.Destroy()
			return nil, nil, err
		}
		return v, t.RawBytes(), nil
	}
	for i, s := range m.md.Inputs {
		shape := slices.Clone(s.Shape)
		if shape[0] < 0 {
			shape[0] = batch
		}
		v, b, err := alloc(s, shape)
		if err != nil {
			destroy(f.own)
			return nil, err
		}
		f.own[i], f.ins[i], f.inBuf[i] = v, v, b
	}
	for j, o := range m.outs {
		v, b, err := alloc(o.spec, f.outShape[j])
		if err != nil {
			destroy(f.own)
			return nil, err
		}
		f.own[nIn+j], f.outs[j], f.outBuf[j] = v, v, b
	}
	f.res.vals = f.own
	return f, nil
}

// rowsOf is the element count of shape with a dynamic dim 0 set to batch.
func (m *Model) rowsOf(shape []int64, batch int64) int64 {
	n := int64(1)
	for i, d := range shape {
		if i == 0 && d < 0 {
			d = batch
		}
		n *= d
	}
	return n
}

// reset destroys the values made for the run and puts the frame's own
// back, and forgets the run's outputs, which belong to its response. A
// run on the frame's own values alone (made false: every slot slotOwn,
// which fill sets again) leaves nothing to do.
func (f *frame) reset() {
	if !f.made {
		return
	}
	nIn := len(f.ins)
	for i, v := range f.ins {
		if own := f.own[i]; v != own {
			if v != nil {
				v.Destroy()
			}
			f.ins[i] = own
		}
	}
	for j, v := range f.outs {
		if own := f.own[nIn+j]; v != own {
			if v != nil {
				v.Destroy()
			}
			f.outs[j] = own
		}
	}
	clear(f.slots)
	f.made = false
}

// runOptions returns f's run options, made on first use; nil when ONNX
// Runtime cannot make them, in which case the run is not cancellable.
func (f *frame) runOptions() *ort.RunOptions {
	if f.res.ro == nil {
		ro, err := ort.NewRunOptions()
		if err != nil {
			return nil
		}
		f.res.ro = ro
	}
	return f.res.ro
}

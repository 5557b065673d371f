package onnx

import (
	"context"
	"runtime"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// Small requests are copied through pooled frames instead of wrapped.
//
// Wrapping a request's slice in an ONNX Runtime value, and an output slice
// in another, costs two cgo calls each (create and release, about 0.5 µs a
// pair here), while copying a few KiB costs a few hundred nanoseconds. So a
// model whose tensors are all numeric keeps, per batch size, frames of
// preallocated input and output values: a small request is copied in, run,
// and its outputs copied out into fresh slices the response owns. Larger
// requests keep the zero-copy path. Frames live in a sync.Pool; a frame the
// pool drops has its ONNX Runtime values released by a runtime cleanup.

// frameBytesPerTensor bounds the copy a frame may cost, per tensor.
const frameBytesPerTensor = 4 << 10

type frame struct {
	ins, outs     []ort.Value
	inBuf, outBuf [][]byte  // byte views of the Go buffers behind the values
	outShape      [][]int64 // the outputs' shapes
}

// maxFrameBatch bounds the batch sizes with frames; larger batches of tiny
// rows are rare and take the zero-copy path.
const maxFrameBatch = 256

// framePools holds a pool per batch size (index 0 for a model without a
// batch dim): an array, as a map lookup cost more than the copy it saves.
type framePools struct {
	ok    bool // decided at load: every tensor numeric, rank >= 1, only dim 0 dynamic
	pools *[maxFrameBatch + 1]sync.Pool
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

// frameFor returns a frame for a validated request, or nil when the
// request should take the zero-copy path.
func (m *Model) frameFor(req *serving.Request, batch int64) *frame {
	if !m.frames.ok || batch == 0 || batch > maxFrameBatch {
		return nil
	}
	size := 0
	for _, t := range req.Inputs {
		size += t.RawSize()
	}
	for _, o := range m.outs {
		size += int(m.rowsOf(o.spec.Shape, batch)) * o.spec.DataType.Size()
	}
	if size > frameBytesPerTensor*(len(m.md.Inputs)+len(m.outs)) {
		return nil
	}
	if f, ok := m.frames.pools[max(batch, 0)].Get().(*frame); ok {
		return f
	}
	f, err := m.newFrame(batch)
	if err != nil {
		return nil // the zero-copy path will report the problem, if any
	}
	return f
}

func (m *Model) putFrame(f *frame, batch int64) {
	m.frames.pools[max(batch, 0)].Put(f)
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

func (m *Model) newFrame(batch int64) (*frame, error) {
	f := &frame{}
	alloc := func(s serving.TensorSpec) (ort.Value, []byte, []int64, error) {
		shape := slices.Clone(s.Shape)
		if shape[0] < 0 {
			shape[0] = batch
		}
		n := int(m.rowsOf(s.Shape, batch))
		v, data, err := newOutput(s.DataType, shape, n)
		if err != nil {
			return nil, nil, nil, err
		}
		t, err := serving.FromSlice(s.Name, s.DataType, shape, data)
		if err != nil {
			v.Destroy()
			return nil, nil, nil, err
		}
		return v, t.RawBytes(), shape, nil
	}
	fail := func(err error) (*frame, error) {
		destroy(f.ins)
		destroy(f.outs)
		return nil, err
	}
	for _, s := range m.md.Inputs {
		v, b, _, err := alloc(s)
		if err != nil {
			return fail(err)
		}
		f.ins, f.inBuf = append(f.ins, v), append(f.inBuf, b)
	}
	for _, o := range m.outs {
		v, b, shape, err := alloc(o.spec)
		if err != nil {
			return fail(err)
		}
		f.outs, f.outBuf, f.outShape = append(f.outs, v), append(f.outBuf, b), append(f.outShape, shape)
	}
	runtime.AddCleanup(f, destroy, slices.Concat(f.ins, f.outs))
	return f, nil
}

// runFrame copies the request into f, runs it, and copies the outputs
// asked for into a response.
func (m *Model) runFrame(ctx context.Context, req *serving.Request, f *frame, ph *phases) (*serving.Response, error) {
	for i, spec := range m.md.Inputs {
		t, _ := req.Input(spec.Name)
		copy(f.inBuf[i], t.RawBytes())
	}
	if err := m.runSession(ctx, f.ins, f.outs, ph); err != nil {
		return nil, m.runError(ctx, err)
	}
	n := len(req.Outputs)
	if n == 0 {
		n = len(m.md.Outputs)
	}
	resp := &serving.Response{Model: m.md.Name, Version: m.md.Version, Outputs: make([]serving.Tensor, n)}
	for k := range n {
		spec, i := m.servedOutput(req, k)
		t, err := serving.Make(spec.Name, spec.DataType, f.outShape[i])
		if err != nil {
			return nil, serving.Errorf(serving.Internal, "onnx: model %q output %q: %w", m.md.Name, spec.Name, err)
		}
		copy(t.RawBytes(), f.outBuf[i])
		resp.Outputs[k] = t
	}
	return resp, nil
}

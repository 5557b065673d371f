package onnx

import (
	"context"
	"slices"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// Predict implements serving.Predictor. The request is validated against
// the metadata before ONNX Runtime sees it; numeric inputs are handed to
// ONNX Runtime without copying and outputs of known shape are written by
// ONNX Runtime straight into the response's slices.
//
// ctx is checked before the run and, when it can be cancelled, watched
// during it: ONNX Runtime's terminate flag makes the run stop at the next
// operator boundary, so a single long operator still runs to its end.
//
// ONNX Runtime computes every output of the graph whatever was asked for
// (its inference builds do not prune, see onnxruntime issue 16483), so
// req.Outputs only selects what the response carries.
func (m *Model) Predict(ctx context.Context, req *serving.Request) (resp *serving.Response, err error) {
	start := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "onnx: model "+m.md.Name); err != nil {
		return nil, err
	}
	if err := m.md.Validate(req); err != nil {
		return nil, err
	}
	span := m.tel.startRun(ctx)
	// The run's phases, for the request's serving.Timing when a transport
	// keeps one: preparing inputs up to the session's Run, the Run, and
	// turning outputs into tensors. They split exactly the time
	// servekit.model.inference.duration records.
	tm := serving.TimingOf(ctx)
	var ph phases
	defer func() {
		// A Go panic in the binding (not a crash inside ONNX Runtime, which
		// no recover can catch) must not take the server down.
		if r := recover(); r != nil {
			resp, err = nil, serving.Errorf(serving.Internal, "onnx: model %q: panic in the ONNX Runtime binding: %v", m.md.Name, r)
		}
		end := time.Now()
		m.tel.ran(ctx, span, end.Sub(start), err)
		if tm != nil && err == nil && !ph.run.IsZero() {
			tm.Executed(serving.Execution{Rows: max(m.batchOf(req), 1),
				ComputeInput: ph.run.Sub(start), ComputeInfer: ph.done.Sub(ph.run), ComputeOutput: end.Sub(ph.done)})
		}
	}()
	if tm == nil {
		resp, err = m.run(ctx, req, nil)
	} else {
		resp, err = m.run(ctx, req, &ph)
	}
	if err != nil {
		return nil, err
	}
	resp.ID = req.ID
	return resp, nil
}

// phases are when a run's session Run started and ended; nil when nobody
// asked (no serving.Timing), which saves the clock reads.
type phases struct{ run, done time.Time }

// slot is one output of one run.
type slot struct {
	buf   any     // preallocated Go data, nil when ONNX Runtime allocates
	shape []int64 // shape of buf
	pre   bool    // preallocated by us (buf may be nil for a scalar)
}

// run executes a validated request. Every ONNX Runtime value it creates,
// or the binding creates for it, is destroyed before it returns.
func (m *Model) run(ctx context.Context, req *serving.Request, ph *phases) (*serving.Response, error) {
	batch := m.batchOf(req)
	if f := m.frameFor(req, batch); f != nil {
		defer m.putFrame(f, batch)
		return m.runFrame(ctx, req, f, ph)
	}
	nIn, nOut := len(m.md.Inputs), len(m.outs)
	vals := make([]ort.Value, nIn+nOut)
	defer destroy(vals)
	ins, outs := vals[:nIn:nIn], vals[nIn:]
	for i, spec := range m.md.Inputs {
		t, _ := req.Input(spec.Name) // present: Validate checked
		v, err := newInput(t)
		if err != nil {
			return nil, serving.Errorf(serving.CodeOf(err), "onnx: model %q input %q: %w", m.md.Name, spec.Name, err)
		}
		ins[i] = v
	}
	slots := make([]slot, nOut)
	derived := false
	for i, o := range m.outs {
		shape := m.outputShape(o, batch)
		if shape == nil {
			if isHalf(o.spec.DataType) {
				return nil, serving.Errorf(serving.Unimplemented,
					"onnx: model %q output %q is %v of shape %v, which depends on the data: the onnxruntime_go binding cannot return such an output",
					m.md.Name, o.spec.Name, o.spec.DataType, o.spec.Shape)
			}
			continue // ONNX Runtime allocates it
		}
		n, err := serving.NumElements(shape)
		if err != nil {
			return nil, serving.Errorf(serving.ResourceExhausted, "onnx: model %q output %q: %w", m.md.Name, o.spec.Name, err)
		}
		v, buf, err := newOutput(o.spec.DataType, shape, int(n))
		if err != nil {
			return nil, serving.Errorf(serving.CodeOf(err), "onnx: model %q output %q: %w", m.md.Name, o.spec.Name, err)
		}
		outs[i], slots[i] = v, slot{buf: buf, shape: shape, pre: true}
		derived = derived || !o.static
	}
	err := m.runSession(ctx, ins, outs, ph)
	if err != nil && derived && ctx.Err() == nil && m.retryUnderived(outs, slots) {
		// Dim 0 of some output was not the batch after all: let ONNX
		// Runtime size those outputs from now on.
		if err = m.runSession(ctx, ins, outs, ph); err == nil {
			m.noDerive.Store(true)
		}
	}
	if err != nil {
		return nil, m.runError(ctx, err)
	}
	return m.collect(req, outs, slots)
}

// runError classifies a failed run: the ctx's error if it ended the run,
// servekit's own errors as they are, and ONNX Runtime's as Internal.
func (m *Model) runError(ctx context.Context, err error) error {
	if _, ok := err.(*serving.Error); ok {
		return err
	}
	if ctx.Err() != nil {
		return serving.ContextError(ctx, "onnx: model "+m.md.Name+": run stopped")
	}
	return serving.Errorf(serving.Internal, "onnx: model %q: ONNX Runtime: %s", m.md.Name, trimBinding(err))
}

// batchOf is dim 0 of the first batchable input, or -1.
func (m *Model) batchOf(req *serving.Request) int64 {
	for _, spec := range m.md.Inputs {
		if spec.Batchable() {
			t, _ := req.Input(spec.Name) // present: Validate checked
			return t.Shape[0]
		}
	}
	return -1
}

// outputShape is the shape to preallocate output o with, or nil when only
// the run can tell it. FP16/BF16 outputs are derived from the batch even
// after a wrong guess: ONNX Runtime cannot allocate them for us.
func (m *Model) outputShape(o output, batch int64) []int64 {
	switch {
	case o.spec.DataType == serving.Bytes:
		return nil
	case o.static:
		return slices.Clone(o.spec.Shape)
	case o.batchDim && batch >= 0 && (isHalf(o.spec.DataType) || !m.noDerive.Load()):
		s := slices.Clone(o.spec.Shape)
		s[0] = batch
		return s
	}
	return nil
}

// retryUnderived frees the derived-shape buffers ONNX Runtime can allocate
// itself and reports whether there were any.
func (m *Model) retryUnderived(outs []ort.Value, slots []slot) bool {
	freed := false
	for i, o := range m.outs {
		if slots[i].pre && !o.static && !isHalf(o.spec.DataType) {
			outs[i].Destroy()
			outs[i], slots[i] = nil, slot{}
			freed = true
		}
	}
	return freed
}

// collect builds the response from the outputs asked for, in the order
// asked (all, in model order, when none were named).
func (m *Model) collect(req *serving.Request, outs []ort.Value, slots []slot) (*serving.Response, error) {
	n := len(req.Outputs)
	if n == 0 {
		n = len(m.md.Outputs)
	}
	resp := &serving.Response{Model: m.md.Name, Version: m.md.Version, Outputs: make([]serving.Tensor, 0, n)}
	for k := range n {
		spec, i := m.servedOutput(req, k)
		s := slots[i]
		data, shape := s.buf, s.shape
		switch {
		case s.pre && data == nil:
			data = scalarData(outs[i])
		case !s.pre:
			var err error
			if data, err = ortData(outs[i]); err != nil {
				return nil, serving.Errorf(serving.Internal, "onnx: model %q output %q: %w", m.md.Name, spec.Name, err)
			}
			shape = outs[i].GetShape()
		}
		t, err := serving.FromSlice(spec.Name, spec.DataType, shape, data)
		if err != nil {
			return nil, serving.Errorf(serving.Internal, "onnx: model %q output %q: %w", m.md.Name, spec.Name, err)
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	return resp, nil
}

// servedOutput returns the spec of the k-th output a response carries and
// the index of the session output that computes it.
func (m *Model) servedOutput(req *serving.Request, k int) (serving.TensorSpec, int) {
	j := k
	if len(req.Outputs) > 0 {
		j = slices.IndexFunc(m.md.Outputs, func(s serving.TensorSpec) bool { return s.Name == req.Outputs[k] })
		// found: Validate checked the names
	}
	return m.md.Outputs[j], m.src[j]
}

// runSession runs the session, watching ctx when it can be cancelled, and
// notes when the run started and ended in ph (when not nil).
func (m *Model) runSession(ctx context.Context, ins, outs []ort.Value, ph *phases) error {
	if ph == nil {
		return m.runSessionNow(ctx, ins, outs)
	}
	ph.run = time.Now()
	err := m.runSessionNow(ctx, ins, outs)
	ph.done = time.Now()
	return err
}

func (m *Model) runSessionNow(ctx context.Context, ins, outs []ort.Value) error {
	if len(ins) == 0 {
		return m.runBound(outs)
	}
	if ctx.Done() == nil {
		return m.session.Run(ins, outs)
	}
	ro := m.runOptions()
	if ro == nil {
		return m.session.Run(ins, outs)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = ro.Terminate()
		close(fired)
	})
	err := m.session.RunWithOptions(ins, outs, ro)
	if stop() {
		m.putRunOptions(ro)
	} else {
		<-fired // Terminate may still be running: wait before freeing ro
		ro.Destroy()
	}
	return err
}

// runBound runs a model without inputs (a constant), which the binding's
// Run cannot do: it goes through an I/O binding, which needs every output
// preallocated.
func (m *Model) runBound(outs []ort.Value) error {
	for i, v := range outs {
		if v == nil {
			return serving.Errorf(serving.Unimplemented,
				"onnx: model %q has no inputs and output %q has a data-dependent shape; the onnxruntime_go binding cannot run it",
				m.md.Name, m.outs[i].spec.Name)
		}
	}
	b, err := m.session.CreateIoBinding()
	if err != nil {
		return err
	}
	defer b.Destroy()
	for i, v := range outs {
		if err := b.BindOutput(m.outs[i].spec.Name, v); err != nil {
			return err
		}
	}
	return m.session.RunWithBinding(b)
}

// runOptions takes run options from the free list or makes new ones; nil
// when ONNX Runtime cannot, in which case the run is not cancellable.
func (m *Model) runOptions() *ort.RunOptions {
	select {
	case ro := <-m.runOpts:
		return ro
	default:
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil
	}
	return ro
}

// putRunOptions keeps unused run options for the next run. Those whose
// terminate flag fired are destroyed instead, never reused.
func (m *Model) putRunOptions(ro *ort.RunOptions) {
	select {
	case m.runOpts <- ro:
	default:
		ro.Destroy()
	}
}

func destroy(vals []ort.Value) {
	for _, v := range vals {
		if v != nil {
			v.Destroy()
		}
	}
}

func isHalf(dt serving.DataType) bool { return dt == serving.FP16 || dt == serving.BF16 }

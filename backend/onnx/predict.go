package onnx

import (
	"context"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// Predict implements serving.Predictor. The request is validated against
// the metadata before ONNX Runtime sees it. Tensors of up to 4 KiB are
// copied through values the model keeps (frames.go); larger numeric inputs
// are handed to ONNX Runtime without copying, and larger outputs of known
// shape are written by ONNX Runtime straight into the response's slices.
// Nothing in the response is shared with the model or with other calls.
//
// ctx is checked before the run and, when it can be cancelled, watched
// during it: within 5 ms of ctx ending, ONNX Runtime's terminate
// flag makes the run stop at the next operator boundary, so a single long
// operator still runs to its end (watch.go).
//
// ONNX Runtime computes every output of the graph whatever was asked for
// (its inference builds do not prune, see onnxruntime issue 16483), so
// req.Outputs only selects what the response carries.
func (m *Model) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	// The clock is read only for a reader: the duration histogram when a
	// meter provider records it (Enabled is false for the API's no-op and
	// for the global delegate before a provider is set), or the request's
	// serving.Timing. Two reads cost about 200 instructions, 8 % of
	// Predict's own; a run's span keeps its own times.
	tm := serving.TimingOf(ctx)
	metered := m.tel.run.Enabled(ctx)
	var start time.Duration
	if metered || tm != nil {
		start = monotonic()
	}
	if !m.refs.acquire() {
		return nil, serving.ErrClosed
	}
	defer m.refs.release()
	if err := serving.ContextError(ctx, m.what); err != nil {
		return nil, err
	}
	var selected [8]int
	sel, err := m.validate(req, selected[:0])
	if err != nil {
		return nil, err
	}
	span := m.tel.startRun(ctx)
	// The run's phases, for the request's serving.Timing when a transport
	// keeps one: preparing inputs up to the session's Run, the Run, and
	// turning outputs into tensors. They split exactly the time
	// servekit.model.inference.duration records.
	var resp *serving.Response
	switch {
	case tm != nil:
		var ph phases
		resp, err = m.run(ctx, req, sel, &ph)
		end := monotonic()
		m.tel.ran(ctx, span, metered, end-start, err)
		if err == nil && ph.ran {
			tm.Executed(serving.Execution{Rows: max(ph.rows, 1),
				ComputeInput: ph.run - start, ComputeInfer: ph.done - ph.run, ComputeOutput: end - ph.done})
		}
	case metered:
		resp, err = m.run(ctx, req, sel, nil)
		m.tel.ran(ctx, span, true, monotonic()-start, err)
	default:
		resp, err = m.run(ctx, req, sel, nil)
		m.tel.ran(ctx, span, false, 0, err)
	}
	if err != nil {
		return nil, err
	}
	resp.ID = req.ID
	return resp, nil
}

// slot is how one output of one run is held.
type slot struct {
	kind  slotKind
	buf   any     // slotCall: the Go data ONNX Runtime writes, nil for a scalar
	shape []int64 // known before the run, or read from the value after it
}

type slotKind uint8

const (
	slotORT  slotKind = iota // ONNX Runtime allocates it, the binding copies it to Go
	slotOwn                  // the frame's own value: copied out
	slotCall                 // preallocated for this run: handed to the response
)

// run executes a validated request. Every ONNX Runtime value it creates,
// or the binding creates for it, is destroyed before it returns.
func (m *Model) run(ctx context.Context, req *serving.Request, sel []int, ph *phases) (resp *serving.Response, err error) {
	var f *frame
	defer m.done(&f, &resp, &err) // first, so that a panic making a frame is caught too
	ordered := m.ordered(req)
	rows := m.batchOf(req, ordered)
	if ph != nil {
		ph.rows = rows
	}
	f = m.frameFor(rows)
	if err := m.fill(f, req, ordered); err != nil {
		return nil, err
	}
	err = m.runSession(ctx, f, ph)
	if err != nil && ctx.Err() == nil && m.underive(f) {
		// Dim 0 of some output was not the batch after all: let ONNX
		// Runtime size those outputs from now on.
		if err = m.runSession(ctx, f, ph); err == nil {
			m.noDerive.Store(true)
		}
	}
	if err != nil {
		return nil, m.runError(ctx, err)
	}
	return m.collect(f, sel)
}

// done ends a run: it turns a Go panic in the binding into the run's error
// (a crash inside ONNX Runtime is not a panic, and no recover catches it),
// so that it does not take the server down, then destroys the values made
// for the run and gives the frame back, if the run got one. One deferred
// call where three (with a closure in Predict) cost about 100 instructions
// more a run.
func (m *Model) done(fp **frame, resp **serving.Response, err *error) {
	if r := recover(); r != nil {
		*resp, *err = nil, serving.Errorf(serving.Internal, "onnx: model %q: panic in the ONNX Runtime binding: %v", m.md.Name, r)
	}
	if f := *fp; f != nil {
		f.reset()
		m.putFrame(f)
	}
}

// fill readies f's values for req: small inputs are copied into the
// frame's own values, others wrapped in place; outputs of known shape get
// the frame's own value or a Go buffer of this run, others are left for
// ONNX Runtime to allocate.
func (m *Model) fill(f *frame, req *serving.Request, ordered bool) error {
	for i := range m.md.Inputs {
		t := m.input(req, i, ordered)
		if t == nil {
			return serving.Errorf(serving.Internal, "onnx: model %q: input %q missing after validation", m.md.Name, m.md.Inputs[i].Name)
		}
		if b := f.inBuf[i]; b != nil {
			// Validate makes a length other than the frame's unreachable;
			// a short copy must never run on a previous request's bytes.
			raw := t.RawBytes()
			if len(raw) != len(b) {
				return serving.Errorf(serving.Internal, "onnx: model %q input %q: %d bytes for a frame of %d", m.md.Name, m.md.Inputs[i].Name, len(raw), len(b))
			}
			copy(b, raw)
			continue
		}
		v, err := newInput(*t)
		if err != nil {
			return serving.Errorf(serving.CodeOf(err), "onnx: model %q input %q: %w", m.md.Name, m.md.Inputs[i].Name, err)
		}
		f.ins[i], f.made = v, true
	}
	for j := range m.outs {
		o := &m.outs[j]
		shape := f.outShape[j]
		if shape != nil && !o.static && !isHalf(o.spec.DataType) && m.noDerive.Load() {
			shape = nil // a shape guessed from the batch proved wrong once
		}
		switch {
		case shape == nil:
			if isHalf(o.spec.DataType) {
				return serving.Errorf(serving.Unimplemented,
					"onnx: model %q output %q is %v of shape %v, which depends on the data: the onnxruntime_go binding cannot return such an output",
					m.md.Name, o.spec.Name, o.spec.DataType, o.spec.Shape)
			}
			f.outs[j], f.slots[j], f.made = nil, slot{}, true
		case f.outBuf[j] != nil:
			f.slots[j] = slot{kind: slotOwn, shape: shape}
		default:
			n, err := serving.NumElements(shape)
			if err != nil {
				return serving.Errorf(serving.ResourceExhausted, "onnx: model %q output %q: %w", m.md.Name, o.spec.Name, err)
			}
			v, buf, err := newOutput(o.spec.DataType, shape, int(n))
			if err != nil {
				return serving.Errorf(serving.CodeOf(err), "onnx: model %q output %q: %w", m.md.Name, o.spec.Name, err)
			}
			f.outs[j], f.slots[j], f.made = v, slot{kind: slotCall, buf: buf, shape: shape}, true
		}
	}
	return nil
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
func (m *Model) batchOf(req *serving.Request, ordered bool) int64 {
	if m.batchIn < 0 {
		return -1
	}
	if t := m.input(req, m.batchIn, ordered); t != nil {
		return t.Shape[0]
	}
	return -1 // fill reports it
}

// ordered reports whether req lists the model's inputs in the model's
// order, as clients and servekit's decoders do: the names are compared
// once a run, and input then reads each by its position.
func (m *Model) ordered(req *serving.Request) bool {
	if len(req.Inputs) != len(m.md.Inputs) {
		return false
	}
	for i := range req.Inputs {
		if req.Inputs[i].Name != m.md.Inputs[i].Name {
			return false
		}
	}
	return true
}

// input returns the request's tensor for the model's i-th input; nil if
// missing, which Validate rules out.
func (m *Model) input(req *serving.Request, i int, ordered bool) *serving.Tensor {
	if ordered {
		return &req.Inputs[i]
	}
	name := m.md.Inputs[i].Name
	for k := range req.Inputs {
		if req.Inputs[k].Name == name {
			return &req.Inputs[k]
		}
	}
	return nil
}

// underive hands the outputs whose shape was derived from the batch over
// to ONNX Runtime, and reports whether there were any. FP16/BF16 outputs
// stay: ONNX Runtime cannot allocate them for the binding.
func (m *Model) underive(f *frame) bool {
	nIn := len(f.ins)
	freed := false
	for j, o := range m.outs {
		if f.outs[j] == nil || o.static || isHalf(o.spec.DataType) {
			continue
		}
		if f.outs[j] != f.own[nIn+j] {
			f.outs[j].Destroy()
		}
		f.outs[j], f.slots[j], f.made = nil, slot{}, true
		freed = true
	}
	return freed
}

// collect builds the response from the outputs sel selects (see
// validate). Nothing in it is the frame's: its own outputs are copied.
func (m *Model) collect(f *frame, sel []int) (*serving.Response, error) {
	n := len(sel)
	if sel == nil {
		n = len(m.md.Outputs)
	}
	rank := 0
	for k := range n {
		i := m.src[m.selected(sel, k)]
		s := &f.slots[i]
		if s.kind == slotORT && s.shape == nil {
			s.shape = f.outs[i].GetShape()
		}
		rank += len(s.shape)
	}
	resp, dims, hdrs := m.newResponse(n, rank)
	for k := range n {
		j := m.selected(sel, k)
		spec, i := &m.md.Outputs[j], m.src[j]
		s := &f.slots[i]
		shape := dims[:len(s.shape):len(s.shape)]
		dims = dims[len(shape):]
		copy(shape, s.shape)
		var data any
		switch {
		case s.kind == slotOwn:
			data = fresh(spec.DataType, f.outBuf[i], &hdrs[k])
		case s.kind == slotCall && s.buf == nil:
			data = scalarData(f.outs[i])
		case s.kind == slotCall:
			data = s.buf
		default:
			var err error
			if data, err = ortData(f.outs[i]); err != nil {
				return nil, serving.Errorf(serving.Internal, "onnx: model %q output %q: %w", m.md.Name, spec.Name, err)
			}
		}
		t, err := serving.FromSlice(spec.Name, spec.DataType, shape, data)
		if err != nil {
			return nil, serving.Errorf(serving.Internal, "onnx: model %q output %q: %w", m.md.Name, spec.Name, err)
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	return resp, nil
}

// selected is the md.Outputs index of the k-th output of the response.
func (m *Model) selected(sel []int, k int) int {
	if sel == nil {
		return k
	}
	return sel[k]
}

// answer1 and answer2 are a response with room for its outputs, their
// shapes and the slice headers their interfaces point at (see boxIn) in
// one allocation: the usual answer of one or two outputs costs that
// allocation plus its data.
type answer1 struct {
	resp serving.Response
	outs [1]serving.Tensor
	dims [4]int64
	hdrs [1][]byte
}

type answer2 struct {
	resp serving.Response
	outs [2]serving.Tensor
	dims [6]int64
	hdrs [2][]byte
}

// newResponse returns an empty response with room for n outputs, a slice
// of rank dims to carve their shapes from, and n slice headers for fresh.
func (m *Model) newResponse(n, rank int) (*serving.Response, []int64, [][]byte) {
	var resp *serving.Response
	var dims []int64
	var hdrs [][]byte
	switch {
	case n == 1 && rank <= len(answer1{}.dims):
		a := new(answer1)
		resp, a.resp.Outputs, dims, hdrs = &a.resp, a.outs[:0], a.dims[:rank], a.hdrs[:]
	case n == 2 && rank <= len(answer2{}.dims):
		a := new(answer2)
		resp, a.resp.Outputs, dims, hdrs = &a.resp, a.outs[:0], a.dims[:rank], a.hdrs[:]
	default:
		resp, dims, hdrs = &serving.Response{Outputs: make([]serving.Tensor, 0, n)}, make([]int64, rank), make([][]byte, n)
	}
	resp.Model, resp.Version = m.md.Name, m.md.Version
	return resp, dims, hdrs
}

// phases are when a run's session Run started and ended (monotonic), and
// the rows it ran; nil when nobody asked (no serving.Timing), which saves
// the clock reads.
type phases struct {
	run, done time.Duration
	rows      int64 // batchOf, as run found it: Predict does not look again
	ran       bool
}

// epoch is the origin of monotonic.
var epoch = time.Now()

// monotonic reads the monotonic clock only: time.Since(epoch) is one vDSO
// call where time.Now is two (wall and monotonic), about 25 ns of the 50
// a time.Now costs here, and a run reads the clock two or four times.
func monotonic() time.Duration { return time.Since(epoch) }

// runSession runs the session on f's values and notes when the run started
// and ended in ph (when not nil).
func (m *Model) runSession(ctx context.Context, f *frame, ph *phases) error {
	if ph == nil {
		return m.runSessionNow(ctx, f)
	}
	ph.run = monotonic()
	err := m.runSessionNow(ctx, f)
	ph.done, ph.ran = monotonic(), true
	return err
}

// runSessionNow runs the session on f's values, watching ctx when it can be
// cancelled: ONNX Runtime's terminate flag, set by the model's watcher
// when ctx has ended (watch.go), stops the run at the next operator
// boundary.
func (m *Model) runSessionNow(ctx context.Context, f *frame) error {
	if len(f.ins) == 0 {
		return m.runBound(f.outs)
	}
	if ctx.Done() == nil {
		return m.session.Run(f.ins, f.outs)
	}
	ro := f.runOptions()
	if ro == nil {
		return m.session.Run(f.ins, f.outs)
	}
	m.watcher.watch(f, ctx)
	err := m.session.RunWithOptions(f.ins, f.outs, ro)
	if m.watcher.unwatch(f) && ro.UnsetTerminate() != nil {
		// The flag stays set: these options would stop every later run.
		ro.Destroy()
		f.res.ro = nil
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

func destroy(vals []ort.Value) {
	for _, v := range vals {
		if v != nil {
			v.Destroy()
		}
	}
}

func isHalf(dt serving.DataType) bool { return dt == serving.FP16 || dt == serving.BF16 }

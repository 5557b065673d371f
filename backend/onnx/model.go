package onnx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// Platform is the metadata platform of every Model, as Triton names it.
const Platform = "onnxruntime_onnx"

// Model is one ONNX model in one ONNX Runtime session, shared by every
// goroutine that calls Predict. It implements serving.Predictor,
// serving.Describer, serving.Readier and io.Closer.
type Model struct {
	md       serving.Metadata // immutable after load
	session  *ort.DynamicAdvancedSession
	fallback error    // why CUDA was not used, after WithCPUFallback
	outs     []output // the session's outputs, in its order
	src      []int    // md.Outputs[i] is computed as outs[src[i]]
	batched  bool     // some input has a dynamic dim 0
	batchIn  int      // the first such input, -1 if none: batchOf reads its dim 0
	tel      telemetry

	// noDerive is set once an output shape derived from the batch dim
	// proved wrong (the model's dim 0 of that output is not the batch);
	// from then on ONNX Runtime allocates those outputs.
	noDerive atomic.Bool

	// refs: the session is destroyed only after in-flight runs return.
	refs      refs
	closeOnce sync.Once
	what      string // "onnx: model NAME", to prefix ctx errors without a per-call concatenation

	frames  framePools
	watcher watcher
}

// output is how one model output is allocated.
type output struct {
	spec serving.TensorSpec
	// static: every dim is fixed, the buffer can always be preallocated.
	// batchDim: only dim 0 is dynamic, so the batch size gives the shape.
	static, batchDim bool
}

var (
	_ serving.Predictor = (*Model)(nil)
	_ serving.Describer = (*Model)(nil)
	_ serving.Readier   = (*Model)(nil)
)

// Load reads the ONNX model at path and creates its session. Files beside
// it that the model references as external data are found relative to it.
// The model name defaults to the file name without its extension.
func Load(path string, opts ...Option) (*Model, error) {
	c := newConfig(opts)
	if c.name == "" {
		c.name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, serving.Errorf(serving.NotFound, "onnx: model %q: no file %s", c.name, path)
	case err != nil:
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q: %w", c.name, err)
	case st.IsDir():
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q: %s is a directory, not an .onnx file", c.name, path)
	}
	return load(c, path, nil)
}

// LoadBytes creates a session for the serialised ONNX model b, named name.
// b is not kept. Models with external data need Load.
func LoadBytes(name string, b []byte, opts ...Option) (*Model, error) {
	c := newConfig(opts)
	if c.name == "" {
		c.name = name
	}
	if len(b) == 0 {
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q: no bytes", c.name)
	}
	return load(c, "", b)
}

func load(c config, path string, b []byte) (*Model, error) {
	start := time.Now()
	// Option mistakes are reported before the runtime is looked for, so
	// they show on a machine without ONNX Runtime or CUDA too.
	if err := c.cuda.check(); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q: %w", c.name, err)
	}
	if _, err := InitRuntime(c.libraryPath); err != nil {
		return nil, err
	}
	where := path
	if path == "" {
		where = fmt.Sprintf("%d bytes", len(b))
	}
	fp, unchanged, err := fingerprint(path, b) // before ONNX Runtime reads the file
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q (%s): %w", c.name, where, err)
	}
	// The binding cannot ask a session for its inputs and outputs, and a
	// session cannot be made without their names, so a throw-away session
	// reads them first. Load gives it the cheapest options; LoadBytes has
	// no such choice in the binding.
	var ins, outs []ort.InputOutputInfo
	if path != "" {
		ins, outs, err = infoFromFile(path)
	} else {
		ins, outs, err = ort.GetInputOutputInfoWithONNXData(b)
	}
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q (%s): ONNX Runtime cannot load it: %v", c.name, where, trimBinding(err))
	}
	m := &Model{md: serving.Metadata{Name: c.name, Version: c.version, Platform: Platform, Fingerprint: fp}}
	// The graph tells what ONNX Runtime does not: what a sequence output
	// holds and a classifier's class labels. A graph servekit cannot read
	// costs those, not the model.
	g, gerr := readModelGraph(path, b)
	if m.md.Inputs, err = inputSpecs(c.name, ins, g); err != nil {
		return nil, err
	}
	plan := planOutputs(outs, g, gerr)
	m.md.Outputs, m.md.Unserved, m.src = plan.served, plan.unserved, plan.src
	if len(plan.served) == 0 {
		return nil, serving.Errorf(serving.Unimplemented, "onnx: model %q (%s): no output can be served: %s", c.name, where, unservedList(plan.unserved))
	}
	if len(plan.edits) > 0 {
		if b, err = rewriteModel(path, b, g, plan.edits); err != nil {
			return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q (%s): %v", c.name, where, err)
		}
	}
	logUnserved(c, plan.unserved)
	inNames, outNames := names(m.md.Inputs), names(plan.session)
	m.session, m.md.Device, m.fallback, err = newSession(c, func(so *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
		if b == nil {
			return ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
		}
		if path != "" {
			// A rewritten model is handed over as bytes: its external data,
			// if any, is still beside the file.
			if err := so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", filepath.Dir(path)); err != nil {
				return nil, err
			}
		}
		return ort.NewDynamicAdvancedSessionWithONNXData(b, inNames, outNames, so)
	})
	if _, ok := err.(*serving.Error); err != nil && !ok {
		err = serving.Errorf(serving.InvalidArgument, "onnx: model %q (%s): creating the session: %v", c.name, where, trimBinding(err))
	}
	if err != nil {
		return nil, err
	}
	liveSessions.Add(1)
	m.batchIn = slices.IndexFunc(m.md.Inputs, serving.TensorSpec.Batchable)
	m.batched = m.batchIn >= 0
	for _, s := range plan.session {
		m.outs = append(m.outs, outputOf(s))
	}
	m.refs.init()
	m.what = "onnx: model " + m.md.Name
	m.initFrames()
	m.tel = newTelemetry(c, m.md)
	m.tel.loaded(time.Since(start))
	if err := unchanged(); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.warmup(c.warmup); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// infoFromFile reads the inputs and outputs with a session that does no
// optimisation and starts no threads: it is thrown away at once.
func infoFromFile(path string) ([]ort.InputOutputInfo, []ort.InputOutputInfo, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer so.Destroy()
	_ = so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
	_ = so.SetIntraOpNumThreads(1)
	_ = so.SetInterOpNumThreads(1)
	return ort.GetInputOutputInfoWithOptions(path, so)
}

func sessionOptions(c config) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, serving.Errorf(serving.Internal, "onnx: session options: %w", err)
	}
	fail := func(what string, err error) (*ort.SessionOptions, error) {
		so.Destroy()
		return nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q: %s: %v", c.name, what, err)
	}
	if err := so.SetIntraOpNumThreads(c.intraOp); err != nil {
		return fail("intra-op threads", err)
	}
	if err := so.SetInterOpNumThreads(c.interOp); err != nil {
		return fail("inter-op threads", err)
	}
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevel(c.optLevel)); err != nil {
		return fail("graph optimisation level", err)
	}
	if err := so.SetCpuMemArena(c.memArena); err != nil {
		return fail("memory arena", err)
	}
	if c.optimizedPath != "" {
		if err := so.SetOptimizedModelFilePath(c.optimizedPath); err != nil {
			return fail("optimised model path", err)
		}
	}
	return so, nil
}

// inputSpecs maps ONNX Runtime's view of the inputs to metadata. An input
// a request cannot carry makes the model unusable, so it fails the load.
func inputSpecs(model string, infos []ort.InputOutputInfo, g *graph) ([]serving.TensorSpec, error) {
	out := make([]serving.TensorSpec, 0, len(infos))
	for _, info := range infos {
		if info.OrtValueType != ort.ONNXTypeTensor {
			what := "a " + valueKind(info.OrtValueType)
			if v := g.declaredInput(info.Name); v != nil {
				what = v.typ.String()
			}
			return nil, serving.Errorf(serving.Unimplemented,
				"onnx: model %q input %q is %s; requests carry plain tensors only", model, info.Name, what)
		}
		dt := dataType(info.DataType)
		if dt == serving.InvalidType {
			return nil, serving.Errorf(serving.Unimplemented,
				"onnx: model %q input %q has element type %s, which servekit cannot carry (it carries %s)",
				model, info.Name, strings.TrimPrefix(info.DataType.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"), carried)
		}
		out = append(out, serving.TensorSpec{Name: info.Name, DataType: dt, Shape: dims(info.Dimensions)})
	}
	return out, nil
}

// rewriteModel applies the output plan's edits to the model's bytes.
func rewriteModel(path string, b []byte, g *graph, edits []edit) ([]byte, error) {
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	return rewrite(b, g, edits), nil
}

func unservedList(u []serving.UnservedOutput) string {
	var b strings.Builder
	for i, o := range u {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "output %q: %s", o.Name, o.Reason)
	}
	return b.String()
}

// logUnserved says once, at load, which outputs the model will not serve.
func logUnserved(c config, u []serving.UnservedOutput) {
	if len(u) == 0 {
		return
	}
	logger := c.logger
	if logger == nil {
		logger = slog.Default()
	}
	for _, o := range u {
		logger.Warn("onnx: model output not served; the others are", "model", c.name, "version", c.version, "output", o.Name, "reason", o.Reason)
	}
}

func valueKind(t ort.ONNXType) string {
	switch t {
	case ort.ONNXTypeSequence:
		return "sequence"
	case ort.ONNXTypeMap:
		return "map"
	case ort.ONNXTypeOptional:
		return "optional"
	case ort.ONNXTypeSparseTensor:
		return "sparse tensor"
	case ort.ONNXTypeOpaque:
		return "opaque value"
	}
	return "value of unknown type"
}

func outputOf(s serving.TensorSpec) output {
	o := output{spec: s, static: true}
	for i, d := range s.Shape {
		if d < 0 {
			o.static = false
			o.batchDim = i == 0
			if i > 0 {
				o.batchDim = false
				break
			}
		}
	}
	if o.static {
		o.batchDim = false
	}
	return o
}

func names(s []serving.TensorSpec) []string {
	n := make([]string, len(s))
	for i := range s {
		n[i] = s[i].Name
	}
	return n
}

// trimBinding drops the binding's nesting ("Error creating C session: ...")
// down to ONNX Runtime's own message, which is the useful part.
func trimBinding(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// liveSessions counts the sessions of Models not yet closed.
var liveSessions atomic.Int64

// LiveSessions is the number of ONNX Runtime sessions held by Models that
// are not closed yet, across the process. Code that loads and unloads
// models repeatedly (a model repository's hot reloads) checks with it that
// every replaced Model was closed: a leak shows as a count that grows.
func LiveSessions() int64 { return liveSessions.Load() }

// Metadata implements serving.Describer. The slices are shared: treat them
// as read-only.
func (m *Model) Metadata() serving.Metadata { return m.md }

// FallbackReason reports why the model runs on the CPU although WithCUDA
// was given: the Unavailable error (wrapping ErrCUDAUnavailable) that
// WithCPUFallback turned into a CPU session. It is nil when the model runs
// where it was asked to.
func (m *Model) FallbackReason() error { return m.fallback }

// Ready implements serving.Readier: true from a successful load until Close.
func (m *Model) Ready() bool { return !m.refs.closed() }

// Close waits for in-flight Predicts and releases the session. Later
// Predicts fail with serving.ErrClosed. Close is idempotent; a Close
// concurrent with the first waits for it. The ONNX Runtime environment
// stays for other models (see InitRuntime).
//
// Runs in flight hold a reference to the session, not a lock: Close
// refuses new runs at once and then waits for the others to return. A run
// ends when its ctx ends (see Predict), so a caller that must not wait
// behind a long run cancels it.
func (m *Model) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.refs.close()
		m.watcher.close()
		err = m.session.Destroy()
		liveSessions.Add(-1)
	})
	return err
}

// warmup runs the model n times on zeros, one row for each dynamic dim.
func (m *Model) warmup(n int) error {
	if n <= 0 {
		return nil
	}
	start := time.Now()
	req := &serving.Request{}
	for _, s := range m.md.Inputs {
		shape := make([]int64, len(s.Shape))
		for i, d := range s.Shape {
			shape[i] = max(d, 1)
		}
		t, err := serving.Make(s.Name, s.DataType, shape)
		if err != nil {
			return serving.Errorf(serving.InvalidArgument, "onnx: model %q: warm-up input: %w", m.md.Name, err)
		}
		req.Inputs = append(req.Inputs, t)
	}
	for i := range n {
		if _, err := m.run(context.Background(), req, nil, nil); err != nil {
			return serving.Errorf(serving.CodeOf(err), "onnx: model %q: warm-up run %d: %w", m.md.Name, i+1, err)
		}
	}
	m.tel.warmedUp(time.Since(start))
	return nil
}

package scoring

import (
	"context"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/servekit/servekit/serving"
)

// Beam metrics, shown by every runner's UI and in PipelineResult.Metrics.
var (
	rowsScored = beam.NewCounter("servekit.scoring", "rows_scored")
	rowsFailed = beam.NewCounter("servekit.scoring", "rows_failed")
	batchRows  = beam.NewDistribution("servekit.scoring", "batch_rows")
)

// scoreFn is the DoFn behind Score. Its exported fields are its JSON
// encoding in the pipeline; the rest is per-instance state that Setup
// builds on the worker.
type scoreFn struct {
	Model        Model    `json:"model"`
	MaxBatchRows int      `json:"max_batch_rows"`
	Outputs      []string `json:"outputs,omitempty"`
	Unbatched    bool     `json:"unbatched,omitempty"`

	p       serving.Predictor
	release func() error
	plan    *plan
	pending []*batch // rows waiting for their batch to fill or the bundle to end
	spare   *batch   // a scored batch, whose buffers the next batch reuses
	vals    []values // scratch for add: the row's values of each input
}

// batch is rows of equal shapes, converted into one typed slice per input.
type batch struct {
	sig    string
	shapes [][]int64 // each input's row shape
	cols   []any     // each input's column (see appendValues)
	rows   []held
}

// held is a row kept until its batch is scored: the Row itself for the
// dead letter, its timestamp for the result.
type held struct {
	ts  beam.EventTime
	row Row
}

type (
	emitFn = func(beam.EventTime, Result)
	failFn = func(beam.EventTime, Failure)
)

func (fn *scoreFn) Setup(ctx context.Context) error {
	p, release, err := acquire(ctx, fn.Model)
	if err != nil {
		return err
	}
	md, ok := serving.MetadataOf(p)
	if !ok {
		err = fmt.Errorf("scoring: the Predictor of loader %q does not describe itself (serving.Describer): rows are mapped to tensors by its metadata", fn.Model.Loader)
	}
	if err == nil {
		fn.plan, err = newPlan(md)
	}
	if err == nil {
		fn.vals = make([]values, len(fn.plan.inputs))
	}
	for _, o := range fn.Outputs {
		if _, ok := md.Output(o); err == nil && !ok {
			err = fmt.Errorf("scoring: WithOutputs: model %q has no output %q", md.Name, o)
		}
	}
	if err != nil {
		_ = release()
		return err
	}
	fn.p, fn.release = p, release
	return nil
}

func (fn *scoreFn) ProcessElement(ctx context.Context, ts beam.EventTime, row Row, emit emitFn, fail failFn) error {
	b, err := fn.add(ts, row)
	if err != nil {
		rowsFailed.Inc(ctx, 1)
		fail(ts, Failure{Row: row, Code: serving.InvalidArgument.String(), Reason: err.Error()})
		return nil
	}
	switch {
	case fn.Unbatched || !fn.plan.batchable || len(b.rows) >= fn.MaxBatchRows:
		return fn.flush(ctx, b, emit, fail)
	case len(fn.pending) > maxPending:
		// Rows of many shapes (a dynamic dim): score the oldest partial
		// batch rather than hold ever more of them until the bundle ends.
		return fn.flush(ctx, fn.pending[0], emit, fail)
	}
	return nil
}

// maxPending bounds the partial batches a DoFn holds, one per row shape.
const maxPending = 16

func (fn *scoreFn) FinishBundle(ctx context.Context, emit emitFn, fail failFn) error {
	for len(fn.pending) > 0 {
		if err := fn.flush(ctx, fn.pending[0], emit, fail); err != nil {
			return err
		}
	}
	return nil
}

func (fn *scoreFn) Teardown() error {
	fn.pending = nil
	if fn.release == nil {
		return nil
	}
	release := fn.release
	fn.p, fn.release = nil, nil
	return release()
}

// add converts row into the pending batch of its shape, or says why it
// does not fit the model.
func (fn *scoreFn) add(ts beam.EventTime, row Row) (*batch, error) {
	p := fn.plan
	vals := fn.vals
	if err := p.lookup(&row, vals); err != nil {
		return nil, err
	}
	shapes := p.fixed
	if p.dynamic {
		shapes = make([][]int64, len(p.inputs))
	}
	for i := range p.inputs {
		in := &p.inputs[i]
		if vals[i].found == 0 {
			return nil, fmt.Errorf("missing input %q", in.Name)
		}
		s, err := in.shape(len(vals[i].nums) + len(vals[i].strs))
		if err != nil {
			return nil, err
		}
		if p.dynamic {
			shapes[i] = s
		}
	}
	sig := signature(shapes, p)
	var b *batch
	for _, pb := range fn.pending {
		if pb.sig == sig {
			b = pb
			break
		}
	}
	if b == nil {
		b, fn.spare = fn.spare, nil
		if b == nil {
			b = &batch{cols: make([]any, len(p.inputs))}
		}
		b.sig, b.shapes = sig, shapes
	}
	for i := range p.inputs {
		col, err := appendValues(b.cols[i], p.inputs[i].DataType, vals[i].nums, vals[i].strs)
		if err != nil {
			// appendValues left earlier inputs' columns one row longer:
			// cut them back so the batch stays aligned.
			for j := range i {
				truncate(b.cols[j], len(b.rows)*b.per(j))
			}
			if len(b.rows) == 0 {
				fn.spare = b
			}
			return nil, fmt.Errorf("input %q %w", p.inputs[i].Name, err)
		}
		b.cols[i] = col
	}
	if len(b.rows) == 0 {
		fn.pending = append(fn.pending, b)
	}
	b.rows = append(b.rows, held{ts: ts, row: row})
	return b, nil
}

// per is the element count of one row of input i.
func (b *batch) per(i int) int {
	n := int64(1)
	for _, d := range b.shapes[i] {
		n *= d
	}
	return int(n)
}

// flush scores b and takes it off the pending list.
func (fn *scoreFn) flush(ctx context.Context, b *batch, emit emitFn, fail failFn) error {
	for i, pb := range fn.pending {
		if pb == b {
			fn.pending = append(fn.pending[:i], fn.pending[i+1:]...)
			break
		}
	}
	if err := fn.score(ctx, b, 0, len(b.rows), emit, fail); err != nil {
		return err
	}
	// Predict has returned, so the model holds nothing of the request's
	// data (serving.Predictor's contract): the buffers can take the next
	// batch, which saves growing them again for every batch.
	for _, c := range b.cols {
		truncate(c, 0)
	}
	clear(b.rows)
	b.rows = b.rows[:0]
	fn.spare = b
	return nil
}

// score scores rows [lo, hi) of b. When the model fails on them for a
// reason a retry cannot cure, it bisects, so that a bad row costs log2(n)
// extra calls and only the rows that fail alone reach the dead letter.
// Errors a retry may cure (overload, unavailable, deadline) are returned:
// the runner then retries the bundle instead of dead-lettering good rows.
func (fn *scoreFn) score(ctx context.Context, b *batch, lo, hi int, emit emitFn, fail failFn) error {
	results, err := fn.predict(ctx, b, lo, hi)
	if err == nil {
		batchRows.Update(ctx, int64(hi-lo))
		rowsScored.Inc(ctx, int64(hi-lo))
		for i, r := range results {
			emit(b.rows[lo+i].ts, r)
		}
		return nil
	}
	switch serving.CodeOf(err) {
	case serving.Unavailable, serving.ResourceExhausted, serving.DeadlineExceeded, serving.Canceled:
		return fmt.Errorf("scoring: model %q, %d rows: %w", fn.plan.md.Name, hi-lo, err)
	}
	if hi-lo == 1 {
		rowsFailed.Inc(ctx, 1)
		h := b.rows[lo]
		fail(h.ts, Failure{Row: h.row, Code: serving.CodeOf(err).String(), Reason: err.Error()})
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := fn.score(ctx, b, lo, mid, emit, fail); err != nil {
		return err
	}
	return fn.score(ctx, b, mid, hi, emit, fail)
}

// predict runs rows [lo, hi) of b through the model as one request and
// splits the answer into one Result per row.
func (fn *scoreFn) predict(ctx context.Context, b *batch, lo, hi int) (results []Result, err error) {
	p := fn.plan
	n := hi - lo
	req := &serving.Request{Model: p.md.Name, Outputs: fn.Outputs, Inputs: make([]serving.Tensor, len(p.inputs))}
	for i, in := range p.inputs {
		shape := b.shapes[i]
		if p.batchable {
			shape = append([]int64{int64(n)}, shape...)
		}
		data := rowsOf(b.cols[i], b.per(i), lo, hi)
		if req.Inputs[i], err = serving.FromSlice(in.Name, in.DataType, shape, data); err != nil {
			return nil, err
		}
	}
	resp, err := safePredict(ctx, fn.p, req)
	if err != nil {
		return nil, err
	}
	numeric := 0
	for _, t := range resp.Outputs {
		if t.DataType != serving.Bytes {
			numeric++
		}
	}
	model, version := resp.Model, resp.Version
	if model == "" {
		model, version = p.md.Name, p.md.Version
	}
	results = make([]Result, n)
	for i := range results {
		results[i] = Result{Key: b.rows[lo+i].row.Key, Model: model, Version: version}
		if numeric > 0 {
			results[i].Outputs = make(map[string][]float64, numeric)
		}
	}
	for _, t := range resp.Outputs {
		if err := split(t, results, p.batchable); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// split deals output t out to the rows of results.
func split(t serving.Tensor, results []Result, batchable bool) error {
	n := len(results)
	if batchable && (len(t.Shape) == 0 || t.Shape[0] != int64(n)) {
		return serving.Errorf(serving.Internal, "scoring: output %q has shape %v for a batch of %d rows", t.Name, t.Shape, n)
	}
	per := t.Len() / n
	if t.DataType == serving.Bytes {
		s, err := t.Strings()
		if err != nil {
			return err
		}
		for i := range results {
			if results[i].Strings == nil {
				results[i].Strings = map[string][]string{}
			}
			results[i].Strings[t.Name] = s[i*per : (i+1)*per : (i+1)*per]
		}
		return nil
	}
	f, ok := floats(t)
	if !ok {
		return serving.Errorf(serving.Internal, "scoring: output %q has datatype %v, which results cannot carry", t.Name, t.DataType)
	}
	for i := range results {
		// A capped slice: a consumer appending to one row's values must
		// not write over the next row's.
		results[i].Outputs[t.Name] = f[i*per : (i+1)*per : (i+1)*per]
	}
	return nil
}

// safePredict turns a Predictor's panic into an Internal error, so one
// row cannot crash a worker (and a retry loop) through a buggy model.
func safePredict(ctx context.Context, p serving.Predictor, req *serving.Request) (resp *serving.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, serving.Errorf(serving.Internal, "scoring: predictor panicked: %v", r)
		}
	}()
	resp, err = p.Predict(ctx, req)
	if err == nil && resp == nil {
		err = serving.Errorf(serving.Internal, "scoring: predictor returned no response and no error")
	}
	return resp, err
}

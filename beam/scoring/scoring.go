package scoring

import (
	"context"
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

// Row is one element to score: a key carried through to the result, and
// the row's values for each model input.
type Row struct {
	// Key identifies the row in Result and Failure (a transaction id, a
	// file offset); scoring never reads it.
	Key string `json:"key"`
	// Inputs maps a numeric input's name to this row's values, flattened
	// in row-major order of the input's shape without the batch dim (8
	// values for a [-1, 8] input). They are converted to the input's
	// datatype, and must fit it exactly: integers for INT and UINT types
	// (±2^53 at most: float64's exact range), 0 or 1 for BOOL, in range
	// for FP32, FP16 and BF16. One dim of the row shape may be dynamic: it
	// is inferred from the length. A model with a single input also takes
	// its values under the name "".
	Inputs map[string][]float64 `json:"inputs,omitempty"`
	// Strings maps a BYTES input's name to this row's values.
	Strings map[string][]string `json:"strings,omitempty"`
}

// Result is a scored row.
type Result struct {
	Key string `json:"key"`
	// Model and Version are what answered (serving.Response), so results
	// of a rollout or a re-run can be told apart.
	Model   string `json:"model"`
	Version string `json:"version,omitempty"`
	// Outputs maps a numeric output's name to this row's values, flattened
	// like Row.Inputs and widened to float64 (exact for FP32, FP16, BF16
	// and integers up to 2^53).
	Outputs map[string][]float64 `json:"outputs,omitempty"`
	// Strings maps a BYTES output's name to this row's values.
	Strings map[string][]string `json:"strings,omitempty"`
}

// Failure is a row that could not be scored, sent to the dead-letter
// output with the reason instead of failing the pipeline.
type Failure struct {
	Row Row `json:"row"`
	// Code is the serving.Code's name: "invalid_argument" for a row that
	// does not fit the model, "internal" for a model that failed on it.
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// DefaultMaxBatchRows is the most rows one Predict call scores unless
// WithMaxBatchRows says otherwise: large enough that per-call overhead
// vanishes for small tabular models, small enough to keep a worker's
// memory flat. See BenchmarkBatchRows.
const DefaultMaxBatchRows = 256

// Option configures Score.
type Option interface{ apply(*scoreFn) }

type optionFunc func(*scoreFn)

func (f optionFunc) apply(fn *scoreFn) { f(fn) }

// WithMaxBatchRows sets the most rows scored by one Predict call (default
// DefaultMaxBatchRows). Rows are batched within a bundle: a full batch is
// scored at once, the rest when the bundle finishes.
func WithMaxBatchRows(n int) Option { return optionFunc(func(fn *scoreFn) { fn.MaxBatchRows = n }) }

// WithOutputs keeps only these model outputs in results (default: all).
func WithOutputs(names ...string) Option {
	return optionFunc(func(fn *scoreFn) { fn.Outputs = append([]string(nil), names...) })
}

// Score scores a PCollection<Row> with the Model's Predictor and returns
// the scored rows, a PCollection<Result>, and the rows that could not be
// scored, a PCollection<Failure> (the dead letters). Every row appears in
// exactly one of them, once, as far as the runner's retries are
// exactly-once (Beam's model: a failed bundle is retried whole and its
// partial output discarded).
//
// Like beam.ParDo, Score panics when the pipeline cannot be built (rows of
// another type, a Model without Path or Loader, an unknown loader); use
// TryScore to get the error.
func Score(s beam.Scope, rows beam.PCollection, m Model, opts ...Option) (results, failures beam.PCollection) {
	results, failures, err := TryScore(s, rows, m, opts...)
	if err != nil {
		panic(err)
	}
	return results, failures
}

// TryScore is Score returning an error instead of panicking.
func TryScore(s beam.Scope, rows beam.PCollection, m Model, opts ...Option) (results, failures beam.PCollection, err error) {
	fn := &scoreFn{Model: m, MaxBatchRows: DefaultMaxBatchRows}
	for _, o := range opts {
		o.apply(fn)
	}
	if fn.MaxBatchRows < 1 {
		return results, failures, fmt.Errorf("scoring: WithMaxBatchRows(%d): want at least 1", fn.MaxBatchRows)
	}
	if _, err := loaderOf(m); err != nil {
		return results, failures, err
	}
	if !rows.IsValid() {
		return results, failures, fmt.Errorf("scoring: rows is not a valid PCollection")
	}
	if t := rows.Type().Type(); t != reflect.TypeFor[Row]() {
		return results, failures, fmt.Errorf("scoring: Score takes a PCollection of scoring.Row, got %v", t)
	}
	// Output from FinishBundle lands in the global window (the Go SDK
	// cannot emit into an element's window there), so only globally
	// windowed rows are batched; rows in other windows are scored one by
	// one as they come, which keeps each in its window. Score before
	// WindowInto to batch streaming rows.
	fn.Unbatched = rows.WindowingStrategy().Fn.Kind != window.GlobalWindows
	s = s.Scope("servekit.Score")
	out, err := beam.TryParDo(s, fn, rows)
	if err != nil {
		return results, failures, err
	}
	return out[0], out[1], nil
}

func init() {
	register.DoFn5x1[context.Context, beam.EventTime, Row, func(beam.EventTime, Result), func(beam.EventTime, Failure), error](&scoreFn{})
	register.Emitter2[beam.EventTime, Result]()
	register.Emitter2[beam.EventTime, Failure]()
	beam.RegisterType(reflect.TypeFor[Row]())
	beam.RegisterType(reflect.TypeFor[Result]())
	beam.RegisterType(reflect.TypeFor[Failure]())
}

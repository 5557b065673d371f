package scoring_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/servekit/servekit/beam/internal/beamtest"
	"github.com/servekit/servekit/beam/scoring"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) { beamtest.Main(m) }

// run scores rows on prism, in this process, and returns what reached the
// two outputs.
func run(t *testing.T, rows []scoring.Row, m scoring.Model, opts ...scoring.Option) (*sink, error) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	results, failures := scoring.Score(s, beam.CreateList(s, rows), m, opts...)
	return collect(t, p, s, results, failures)
}

func collect(t *testing.T, p *beam.Pipeline, s beam.Scope, results, failures beam.PCollection) (*sink, error) {
	t.Helper()
	name := t.Name()
	sinks.Store(name, &sink{at: map[string]beam.EventTime{}, windows: map[string]beam.Window{}})
	t.Cleanup(func() { sinks.Delete(name) })
	beam.ParDo0(s, &collectResults{Sink: name}, results)
	beam.ParDo0(s, &collectFailures{Sink: name}, failures)
	_, err := prism.Execute(context.Background(), p)
	v, _ := sinks.Load(name)
	return v.(*sink), err
}

// sinks hold what the collecting DoFns saw, by test name: prism runs the
// workers in this process (loopback), so a DoFn can hand results back to
// the test through a package variable.
var sinks sync.Map

type sink struct {
	mu       sync.Mutex
	results  []scoring.Result
	failures []scoring.Failure
	at       map[string]beam.EventTime
	windows  map[string]beam.Window
}

type collectResults struct{ Sink string }

func (c *collectResults) ProcessElement(w beam.Window, ts beam.EventTime, r scoring.Result) {
	v, _ := sinks.Load(c.Sink)
	k := v.(*sink)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.results = append(k.results, r)
	k.at[r.Key], k.windows[r.Key] = ts, w
}

type collectFailures struct{ Sink string }

func (c *collectFailures) ProcessElement(f scoring.Failure) {
	v, _ := sinks.Load(c.Sink)
	k := v.(*sink)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures = append(k.failures, f)
}

// fake is a servingtest model behind a registered loader, counting loads
// and the rows of every Predict call.
type fake struct {
	mu      sync.Mutex
	loads   int     // guarded by mu
	batches []int64 // guarded by mu
	model   func() *servingtest.Fake
}

var fakes = map[string]*fake{
	"linear": {model: func() *servingtest.Fake { return servingtest.Linear(4) }},
	// poison fails a whole batch when one of its rows starts with a
	// negative value, as a model whose op rejects one row's data does.
	"poison": {model: func() *servingtest.Fake { return wrap(servingtest.Linear(4), poison) }},
	// overloaded fails every call with an error a retry may cure.
	"overloaded": {model: func() *servingtest.Fake {
		return servingtest.Failing(serving.ErrOverloaded).WithMetadata(servingtest.Linear(4).Metadata())
	}},
	// panicky panics on a row that starts with 13.
	"panicky": {model: func() *servingtest.Fake {
		return wrap(servingtest.Linear(4), func(x []float32) error {
			if slices.Contains(starts(x), 13) {
				panic("thirteen")
			}
			return nil
		})
	}},
}

func poison(x []float32) error {
	for _, v := range starts(x) {
		if v < 0 {
			return serving.Errorf(serving.Internal, "poisoned row %v", v)
		}
	}
	return nil
}

func starts(x []float32) []float32 {
	var s []float32
	for i := 0; i < len(x); i += 4 {
		s = append(s, x[i])
	}
	return s
}

func wrap(next *servingtest.Fake, check func([]float32) error) *servingtest.Fake {
	return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		in, _ := req.Input("x")
		x, _ := serving.Values[float32](in)
		if err := check(x); err != nil {
			return nil, err
		}
		return next.Predict(ctx, req)
	}).WithMetadata(next.Metadata())
}

type tracked struct {
	*servingtest.Fake
	f *fake
}

func (t tracked) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	t.f.mu.Lock()
	t.f.batches = append(t.f.batches, req.Rows())
	t.f.mu.Unlock()
	return t.Fake.Predict(ctx, req)
}

func (f *fake) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads, f.batches = 0, nil
}

func (f *fake) stats() (loads int, batches []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads, slices.Clone(f.batches)
}

// stamp gives row i the event time i seconds.
func stamp(r scoring.Row, emit func(beam.EventTime, scoring.Row)) {
	var i int64
	fmt.Sscan(r.Key, &i)
	emit(beam.EventTime(i*1000), r)
}

func init() {
	for name, f := range fakes {
		scoring.RegisterLoader(name, func(context.Context, scoring.Model) (serving.Predictor, error) {
			f.mu.Lock()
			f.loads++
			f.mu.Unlock()
			return tracked{Fake: f.model(), f: f}, nil
		})
	}
	register.DoFn3x0[beam.Window, beam.EventTime, scoring.Result](&collectResults{})
	register.DoFn1x0[scoring.Failure](&collectFailures{})
	register.Function2x0(stamp)
	register.Emitter2[beam.EventTime, scoring.Row]()
}

// linearRows returns n rows for Linear(4): row i is {i, i+.5, -i, 1}
// (poison rows, when asked, start with -1).
func linearRows(n int) []scoring.Row {
	rows := make([]scoring.Row, n)
	for i := range rows {
		x := float64(i)
		rows[i] = scoring.Row{Key: fmt.Sprint(i), Inputs: map[string][]float64{"x": {x, x + .5, -x, 1}}}
	}
	return rows
}

// direct is what Predict gives for row alone: the answer the pipeline
// must reproduce.
func direct(t *testing.T, p serving.Predictor, row scoring.Row) []float64 {
	t.Helper()
	x := make([]float32, len(row.Inputs["x"]))
	for i, v := range row.Inputs["x"] {
		x[i] = float32(v)
	}
	in, err := serving.NewTensor("x", []int64{1, int64(len(x))}, x)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
	if err != nil {
		t.Fatal(err)
	}
	y, _ := serving.Values[float32](resp.Outputs[0])
	out := make([]float64, len(y))
	for i, v := range y {
		out[i] = float64(v)
	}
	return out
}

// exactlyOnce checks that every row is in exactly one of the outputs, once.
func exactlyOnce(t *testing.T, rows []scoring.Row, k *sink) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range k.results {
		seen[r.Key]++
	}
	for _, f := range k.failures {
		seen[f.Row.Key]++
	}
	for _, r := range rows {
		if seen[r.Key] != 1 {
			t.Errorf("row %q came out %d times, want once", r.Key, seen[r.Key])
		}
		delete(seen, r.Key)
	}
	for key := range seen {
		t.Errorf("output has row %q that was never input", key)
	}
}

func TestScoreEveryRowOnce(t *testing.T) {
	f := fakes["linear"]
	f.reset()
	rows := linearRows(1000)
	bad := map[string]string{}
	for i := 3; i < len(rows); i += 97 {
		rows[i].Inputs["x"] = rows[i].Inputs["x"][:3]
		bad[rows[i].Key] = `input "x" takes 4 values per row (shape [4]), got 3`
	}
	rows[500].Inputs["z"] = []float64{1}
	bad["500"] = `model "linear" has no input "z" (inputs: x)`
	rows[600].Inputs["x"][0] = 1e39
	bad["600"] = `input "x" element 0: 1e+39 does not fit FP32`

	k, err := run(t, rows, scoring.Model{Loader: "linear", Name: t.Name()}, scoring.WithMaxBatchRows(64))
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, rows, k)
	if len(k.failures) != len(bad) {
		t.Errorf("%d failures, want %d", len(k.failures), len(bad))
	}
	for _, f := range k.failures {
		if f.Code != "invalid_argument" || f.Reason != bad[f.Row.Key] {
			t.Errorf("row %q failed with %s %q, want invalid_argument %q", f.Row.Key, f.Code, f.Reason, bad[f.Row.Key])
		}
		if !reflect.DeepEqual(f.Row.Inputs["x"], rows[mustAtoi(t, f.Row.Key)].Inputs["x"]) {
			t.Errorf("dead letter of row %q lost its values: %v", f.Row.Key, f.Row.Inputs)
		}
	}
	ref := servingtest.Linear(4)
	for _, r := range k.results {
		want := direct(t, ref, rows[mustAtoi(t, r.Key)])
		if !reflect.DeepEqual(r.Outputs["y"], want) || r.Model != "linear" {
			t.Errorf("row %q: %s %v, want linear %v", r.Key, r.Model, r.Outputs, want)
		}
	}

	// Beam's Go harness never calls Teardown (the model lives as long as
	// the worker), so only loads are counted.
	loads, batches := f.stats()
	if loads != 1 {
		t.Errorf("model loaded %d times on the one worker, want once", loads)
	}
	var scored int64
	for _, b := range batches {
		if b > 64 {
			t.Errorf("a batch of %d rows, more than WithMaxBatchRows(64)", b)
		}
		scored += b
	}
	if scored != int64(len(k.results)) || len(batches) > 2*len(rows)/64 {
		t.Errorf("%d rows scored in %d calls (%v); want %d rows in about %d calls", scored, len(batches), batches, len(k.results), len(rows)/64)
	}
}

func TestScoreBisectsFailedBatch(t *testing.T) {
	f := fakes["poison"]
	f.reset()
	rows := linearRows(640)
	poisoned := []string{"7", "8", "300", "639"}
	for _, key := range poisoned {
		rows[mustAtoi(t, key)].Inputs["x"][0] = -1
	}
	k, err := run(t, rows, scoring.Model{Loader: "poison"}, scoring.WithMaxBatchRows(64))
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, rows, k)
	var failed []string
	for _, f := range k.failures {
		failed = append(failed, f.Row.Key)
		if f.Code != "internal" || f.Reason != "poisoned row -1" {
			t.Errorf("row %q: %s %q, want internal \"poisoned row -1\"", f.Row.Key, f.Code, f.Reason)
		}
	}
	slices.Sort(failed)
	slices.Sort(poisoned)
	if !slices.Equal(failed, poisoned) {
		t.Errorf("dead letters %v, want exactly the poisoned rows %v", failed, poisoned)
	}
	// Each poisoned row costs at most two calls per halving of its batch.
	_, batches := f.stats()
	if limit := 2*len(rows)/64 + len(poisoned)*2*6; len(batches) > limit {
		t.Errorf("%d Predict calls, want at most %d", len(batches), limit)
	}
}

func TestScoreRetryableErrorFailsBundle(t *testing.T) {
	_, err := run(t, linearRows(10), scoring.Model{Loader: "overloaded"})
	if err == nil {
		t.Fatal("an overloaded model's rows were dead-lettered or dropped; want the bundle to fail for the runner to retry")
	}
	if !errorHas(err, "overloaded") {
		t.Errorf("pipeline error does not name the cause: %v", err)
	}
}

func TestScorePanicIsRowFailure(t *testing.T) {
	rows := linearRows(40)
	k, err := run(t, rows, scoring.Model{Loader: "panicky"})
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, rows, k)
	if len(k.failures) != 1 || k.failures[0].Row.Key != "13" || k.failures[0].Code != "internal" || !errorHas(fmt.Errorf("%s", k.failures[0].Reason), "thirteen") {
		t.Errorf("failures %+v, want row 13 as an internal failure naming the panic", k.failures)
	}
}

func TestScoreKeepsTimestampsAndWindows(t *testing.T) {
	for _, windowed := range []bool{false, true} {
		t.Run(fmt.Sprint("windowed=", windowed), func(t *testing.T) {
			f := fakes["linear"]
			f.reset()
			rows := linearRows(300)
			p, s := beam.NewPipelineWithRoot()
			stamped := beam.ParDo(s, stamp, beam.CreateList(s, rows))
			if windowed {
				stamped = beam.WindowInto(s, window.NewFixedWindows(time.Minute), stamped)
			}
			results, failures := scoring.Score(s, stamped, scoring.Model{Loader: "linear"})
			k, err := collect(t, p, s, results, failures)
			if err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, rows, k)
			for _, r := range k.results {
				i := int64(mustAtoi(t, r.Key))
				if got := k.at[r.Key]; got != beam.EventTime(i*1000) {
					t.Errorf("row %d scored at %v, want its own time %v", i, got, beam.EventTime(i*1000))
				}
				var want beam.Window = window.GlobalWindow{}
				if windowed {
					start := mtime.FromMilliseconds(i * 1000 / 60000 * 60000)
					want = window.IntervalWindow{Start: start, End: start.Add(time.Minute)}
				}
				if !k.windows[r.Key].Equals(want) {
					t.Errorf("row %d scored in window %v, want %v", i, k.windows[r.Key], want)
				}
			}
			_, batches := f.stats()
			if big := slices.Max(batches); windowed && big != 1 || !windowed && big == 1 {
				t.Errorf("largest batch %d rows: windowed rows must be scored alone, global ones batched", big)
			}
		})
	}
}

func TestTryScoreRefusesBadPipelines(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	_ = p
	rows := beam.CreateList(s, linearRows(2))
	words := beam.Create(s, "not", "rows")
	for name, tc := range map[string]struct {
		col  beam.PCollection
		m    scoring.Model
		opts []scoring.Option
		want string
	}{
		"wrong element type": {words, scoring.Model{Loader: "linear"}, nil, "takes a PCollection of scoring.Row, got string"},
		"no model":           {rows, scoring.Model{}, nil, "Model needs a Path or a Loader"},
		"unknown loader":     {rows, scoring.Model{Loader: "nope"}, nil, `no loader "nope" registered`},
		"zero batch":         {rows, scoring.Model{Loader: "linear"}, []scoring.Option{scoring.WithMaxBatchRows(0)}, "want at least 1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := scoring.TryScore(s, tc.col, tc.m, tc.opts...)
			if err == nil || !errorHas(err, tc.want) {
				t.Errorf("TryScore: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func errorHas(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

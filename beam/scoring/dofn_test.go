package scoring

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// These tests drive the DoFn's methods directly, as a runner would, on
// models prism tests cannot reach easily: several inputs, strings,
// dynamic row shapes, no batch dim.

// mixed has a FP32 [-1, 2] input "a" and a BYTES [-1] input "b", and
// answers "sum" FP32 [-1, 1] (a0 + a1) and "label" BYTES [-1] (b + "!").
func mixed() *servingtest.Fake {
	md := serving.Metadata{
		Name: "mixed", Version: "2",
		Inputs: []serving.TensorSpec{
			{Name: "a", DataType: serving.FP32, Shape: []int64{-1, 2}},
			{Name: "b", DataType: serving.Bytes, Shape: []int64{-1}},
		},
		Outputs: []serving.TensorSpec{
			{Name: "sum", DataType: serving.FP32, Shape: []int64{-1, 1}},
			{Name: "label", DataType: serving.Bytes, Shape: []int64{-1}},
		},
	}
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if err := md.Validate(req); err != nil {
			return nil, err
		}
		at, _ := req.Input("a")
		bt, _ := req.Input("b")
		a, _ := serving.Values[float32](at)
		b, _ := bt.Strings()
		n := len(b)
		sum := make([]float32, n)
		label := make([]string, n)
		for i := range n {
			sum[i] = a[2*i] + a[2*i+1]
			label[i] = b[i] + "!"
		}
		st, _ := serving.NewTensor("sum", []int64{int64(n), 1}, sum)
		lt, _ := serving.NewStrings("label", []int64{int64(n)}, label)
		var outs []serving.Tensor
		for _, t := range []serving.Tensor{st, lt} {
			if len(req.Outputs) == 0 || slices.Contains(req.Outputs, t.Name) {
				outs = append(outs, t)
			}
		}
		return &serving.Response{Model: "mixed", Version: "2", Outputs: outs}, nil
	}).WithMetadata(md)
}

// echo is an identity model over spec: "y" = "x".
func echo(spec serving.TensorSpec) *servingtest.Fake {
	out := spec
	out.Name = "y"
	md := serving.Metadata{Name: "echo", Inputs: []serving.TensorSpec{spec}, Outputs: []serving.TensorSpec{out}}
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if err := md.Validate(req); err != nil {
			return nil, err
		}
		y := req.Inputs[0].Clone()
		y.Name = "y"
		return &serving.Response{Model: "echo", Outputs: []serving.Tensor{y}}, nil
	}).WithMetadata(md)
}

var unitModels = map[string]func() serving.Predictor{
	"unit-mixed": func() serving.Predictor { return mixed() },
	// a row of any length: [-1, -1]
	"unit-ragged": func() serving.Predictor {
		return echo(serving.TensorSpec{Name: "x", DataType: serving.Int64, Shape: []int64{-1, -1}})
	},
	// no batch dim: every row is the whole [1, 3] tensor
	"unit-fixed": func() serving.Predictor {
		return echo(serving.TensorSpec{Name: "x", DataType: serving.FP64, Shape: []int64{1, 3}})
	},
	// a Predictor that does not describe itself
	"unit-anonymous": func() serving.Predictor {
		return serving.PredictorFunc(func(context.Context, *serving.Request) (*serving.Response, error) { return &serving.Response{}, nil })
	},
}

func init() {
	for name, m := range unitModels {
		RegisterLoader(name, func(context.Context, Model) (serving.Predictor, error) { return recorded(m()), nil })
	}
}

// recorder keeps the requests of the last loaded model.
var lastRecorder atomic.Pointer[servingtest.Recorder]

func recorded(p serving.Predictor) serving.Predictor {
	r := servingtest.NewRecorder(p)
	lastRecorder.Store(r)
	return r
}

// bundle runs rows through a fresh DoFn as one bundle and returns what it
// emitted; the DoFn is torn down at the end of the test.
type emitted struct {
	results  []Result
	failures []Failure
	at       []beam.EventTime
}

func bundle(t *testing.T, fn *scoreFn, rows ...Row) (emitted, error) {
	t.Helper()
	ctx := context.Background()
	if fn.MaxBatchRows == 0 {
		fn.MaxBatchRows = DefaultMaxBatchRows
	}
	if err := fn.Setup(ctx); err != nil {
		return emitted{}, err
	}
	t.Cleanup(func() { fn.Teardown() })
	var e emitted
	emit := func(ts beam.EventTime, r Result) { e.results = append(e.results, r); e.at = append(e.at, ts) }
	fail := func(ts beam.EventTime, f Failure) { e.failures = append(e.failures, f) }
	for i, r := range rows {
		if err := fn.ProcessElement(ctx, beam.EventTime(i), r, emit, fail); err != nil {
			return e, err
		}
	}
	return e, fn.FinishBundle(ctx, emit, fail)
}

func TestSeveralInputsAndStrings(t *testing.T) {
	rows := []Row{
		{Key: "k0", Inputs: map[string][]float64{"a": {1, 2}}, Strings: map[string][]string{"b": {"x"}}},
		{Key: "k1", Inputs: map[string][]float64{"a": {3, 4.5}}, Strings: map[string][]string{"b": {"y"}}},
		{Key: "k2", Inputs: map[string][]float64{"a": {1, 2}}},                                                       // no "b"
		{Key: "k3", Inputs: map[string][]float64{"a": {1, 2}, "b": {7}}},                                             // "b" as numbers
		{Key: "k4", Inputs: map[string][]float64{"a": {1, 2}}, Strings: map[string][]string{"b": {"z"}, "c": {"?"}}}, // unknown "c"
		{Key: "k5", Inputs: map[string][]float64{"": {1, 2}}, Strings: map[string][]string{"b": {"z"}}},              // "" with two inputs
		{Key: "k6", Inputs: map[string][]float64{"a": {5, 5}}, Strings: map[string][]string{"b": {"w"}}},
	}
	e, err := bundle(t, &scoreFn{Model: Model{Loader: "unit-mixed"}}, rows...)
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{
		{Key: "k0", Model: "mixed", Version: "2", Outputs: map[string][]float64{"sum": {3}}, Strings: map[string][]string{"label": {"x!"}}},
		{Key: "k1", Model: "mixed", Version: "2", Outputs: map[string][]float64{"sum": {7.5}}, Strings: map[string][]string{"label": {"y!"}}},
		{Key: "k6", Model: "mixed", Version: "2", Outputs: map[string][]float64{"sum": {10}}, Strings: map[string][]string{"label": {"w!"}}},
	}
	if !reflect.DeepEqual(e.results, want) {
		t.Errorf("results\n%+v\nwant\n%+v", e.results, want)
	}
	if !slices.Equal(e.at, []beam.EventTime{0, 1, 6}) {
		t.Errorf("results at %v, want the rows' own times [0 1 6]", e.at)
	}
	reasons := map[string]string{
		"k2": `missing input "b"`,
		"k3": `input "b" is BYTES: give it as strings`,
		"k4": `model "mixed" has no input "c" (inputs: a, b)`,
		"k5": `model "mixed" has no input "" (inputs: a, b)`,
	}
	for _, f := range e.failures {
		if f.Reason != reasons[f.Row.Key] || f.Code != "invalid_argument" {
			t.Errorf("row %s failed with %s %q, want invalid_argument %q", f.Row.Key, f.Code, f.Reason, reasons[f.Row.Key])
		}
		delete(reasons, f.Row.Key)
	}
	if len(reasons) > 0 {
		t.Errorf("rows not dead-lettered: %v", reasons)
	}
	if reqs := lastRecorder.Load().Requests(); len(reqs) != 1 || reqs[0].Rows() != 3 {
		t.Errorf("%d requests, want the three good rows in one", len(reqs))
	}
}

func TestWithOutputs(t *testing.T) {
	row := Row{Key: "k", Inputs: map[string][]float64{"a": {1, 2}}, Strings: map[string][]string{"b": {"x"}}}
	e, err := bundle(t, &scoreFn{Model: Model{Loader: "unit-mixed"}, Outputs: []string{"label"}}, row)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.results) != 1 || e.results[0].Outputs != nil || !slices.Equal(e.results[0].Strings["label"], []string{"x!"}) {
		t.Errorf("results %+v, want only label", e.results)
	}
	if got := lastRecorder.Load().Requests()[0].Outputs; !slices.Equal(got, []string{"label"}) {
		t.Errorf("request asked for outputs %v, want [label]", got)
	}
	_, err = bundle(t, &scoreFn{Model: Model{Loader: "unit-mixed"}, Outputs: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), `model "mixed" has no output "nope"`) {
		t.Errorf("Setup with an unknown output: %v", err)
	}
}

func TestDynamicRowShapesBatchApart(t *testing.T) {
	var rows []Row
	for i, n := range []int{3, 5, 3, 5, 3, 0} {
		x := make([]float64, n)
		for j := range x {
			x[j] = float64(10*i + j)
		}
		rows = append(rows, Row{Key: string(rune('a' + i)), Inputs: map[string][]float64{"x": x}})
	}
	rows = append(rows, Row{Key: "g", Inputs: map[string][]float64{"x": {1.5}}}) // not an integer
	rows = append(rows, Row{Key: "h", Inputs: map[string][]float64{"x": {1 << 60}}})
	e, err := bundle(t, &scoreFn{Model: Model{Loader: "unit-ragged"}}, rows...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for _, r := range e.results {
		got[r.Key] = r.Outputs["y"]
	}
	for _, r := range rows[:6] {
		if !slices.Equal(got[r.Key], r.Inputs["x"]) {
			t.Errorf("row %s: %v, want %v", r.Key, got[r.Key], r.Inputs["x"])
		}
	}
	if !slices.Equal(got["h"], []float64{1 << 60}) {
		t.Errorf("row h: %v, want 2^60 exactly", got["h"])
	}
	if len(e.failures) != 1 || e.failures[0].Reason != `input "x" element 0: 1.5 does not fit INT64` {
		t.Errorf("failures %+v, want g's 1.5", e.failures)
	}
	var sizes []int64
	for _, r := range lastRecorder.Load().Requests() {
		sizes = append(sizes, r.Rows())
	}
	if !slices.Equal(sizes, []int64{3, 2, 1, 1}) { // lengths 3, 5, 0 and h's 1, in order of arrival
		t.Errorf("batches of %v rows, want [3 2 1 1]: rows of one length together", sizes)
	}
}

func TestModelWithoutBatchDim(t *testing.T) {
	rows := []Row{
		{Key: "a", Inputs: map[string][]float64{"x": {1, 2, 3}}},
		{Key: "b", Inputs: map[string][]float64{"": {4, 5, 6}}},
		{Key: "c", Inputs: map[string][]float64{"x": {4, 5}}},
	}
	e, err := bundle(t, &scoreFn{Model: Model{Loader: "unit-fixed"}}, rows...)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.results) != 2 || !slices.Equal(e.results[1].Outputs["y"], []float64{4, 5, 6}) {
		t.Errorf("results %+v", e.results)
	}
	if len(e.failures) != 1 || e.failures[0].Reason != `input "x" takes 3 values per row (shape [1 3]), got 2` {
		t.Errorf("failures %+v", e.failures)
	}
	for _, r := range lastRecorder.Load().Requests() {
		if !slices.Equal(r.Inputs[0].Shape, []int64{1, 3}) {
			t.Errorf("request shape %v, want the model's [1 3]", r.Inputs[0].Shape)
		}
	}
}

func TestSetupNeedsMetadata(t *testing.T) {
	_, err := bundle(t, &scoreFn{Model: Model{Loader: "unit-anonymous"}})
	if err == nil || !strings.Contains(err.Error(), "does not describe itself") {
		t.Errorf("Setup with a Predictor without metadata: %v", err)
	}
	// the failed Setup gave its reference back
	pool.Lock()
	defer pool.Unlock()
	if _, held := pool.m[`{"loader":"unit-anonymous"}`]; held {
		t.Error("pool holds the model after its only holder failed")
	}
}

func TestBadModelPathFailsSetup(t *testing.T) {
	_, err := bundle(t, &scoreFn{Model: Model{Path: t.TempDir() + "/missing.onnx"}})
	if err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("Setup with a missing model: %v, want an error naming the file", err)
	}
}

func TestAppendValues(t *testing.T) {
	for _, tc := range []struct {
		dt   serving.DataType
		in   []float64
		want any
		err  string
	}{
		{serving.FP32, []float64{1.5, math.Inf(-1), math.MaxFloat32}, []float32{1.5, float32(math.Inf(-1)), math.MaxFloat32}, ""},
		{serving.FP32, []float64{1, 1e39}, nil, "element 1: 1e+39 does not fit FP32"},
		{serving.FP64, []float64{1e300}, []float64{1e300}, ""},
		{serving.FP16, []float64{1, 65504}, []uint16{0x3c00, 0x7bff}, ""},
		{serving.FP16, []float64{70000}, nil, "element 0: 70000 does not fit FP16"},
		{serving.BF16, []float64{1, math.Inf(1)}, []uint16{0x3f80, 0x7f80}, ""},
		{serving.Int8, []float64{-128, 127}, []int8{-128, 127}, ""},
		{serving.Int8, []float64{128}, nil, "element 0: 128 does not fit INT8"},
		{serving.Int32, []float64{-2147483648}, []int32{math.MinInt32}, ""},
		{serving.Int64, []float64{-9007199254740992}, []int64{-1 << 53}, ""},
		{serving.Int64, []float64{0x1p63}, nil, "element 0: 9.223372036854776e+18 does not fit INT64"},
		{serving.Int64, []float64{math.NaN()}, nil, "element 0: NaN does not fit INT64"},
		{serving.Uint8, []float64{255}, []uint8{255}, ""},
		{serving.Uint8, []float64{-1}, nil, "element 0: -1 does not fit UINT8"},
		{serving.Uint16, []float64{65535}, []uint16{65535}, ""},
		{serving.Uint64, []float64{0x1p63}, []uint64{1 << 63}, ""},
		{serving.Bool, []float64{0, 1}, []bool{false, true}, ""},
		{serving.Bool, []float64{2}, nil, "element 0: 2 does not fit BOOL"},
	} {
		got, err := appendValues(nil, tc.dt, tc.in, nil)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%v %v: error %v, want %q", tc.dt, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(rowsOf(got, 1, 0, len(tc.in)), tc.want) {
			t.Errorf("%v %v: %#v, %v; want %#v", tc.dt, tc.in, got, err, tc.want)
		}
	}
	// a refused row leaves what was there before it
	d, _ := appendValues(nil, serving.Int8, []float64{1, 2}, nil)
	d, err := appendValues(d, serving.Int8, []float64{3, 300}, nil)
	if err == nil || !slices.Equal(*d.(*[]int8), []int8{1, 2}) {
		t.Errorf("after a refused row: %v, %v; want [1 2] and an error", d, err)
	}
}

func TestPlanRefusesUninferableShapes(t *testing.T) {
	_, err := newPlan(serving.Metadata{Name: "img", Inputs: []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, 3, -1, -1}}}})
	if err == nil || !strings.Contains(err.Error(), "one dim to be inferred") {
		t.Errorf("newPlan with two dynamic row dims: %v", err)
	}
	_, err = newPlan(serving.Metadata{Name: "none"})
	if err == nil {
		t.Error("newPlan of a model without inputs: no error")
	}
}

func TestPoolSharesOneLoad(t *testing.T) {
	var loads, closes atomic.Int32
	gate := make(chan struct{})
	RegisterLoader("unit-pool", func(context.Context, Model) (serving.Predictor, error) {
		loads.Add(1)
		<-gate
		return &closeCounter{Predictor: servingtest.Linear(1), n: &closes}, nil
	})
	m := Model{Loader: "unit-pool"}
	var wg sync.WaitGroup
	releases := make(chan func() error, 8)
	for range 8 {
		wg.Go(func() {
			_, release, err := acquire(context.Background(), m)
			if err != nil {
				t.Error(err)
				return
			}
			releases <- release
		})
	}
	// Every holder counts itself in the entry before it waits, so at 8
	// references the other seven wait for the first one's load.
	poll.Until(t, "8 holders of the loading model", func() bool {
		pool.Lock()
		defer pool.Unlock()
		e := pool.m[`{"loader":"unit-pool"}`]
		return e != nil && e.refs == 8
	})
	close(gate)
	wg.Wait()
	close(releases)
	i := 0
	for release := range releases {
		if closes.Load() != 0 {
			t.Fatalf("model closed while %d holders remain", 8-i)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		i++
	}
	if loads.Load() != 1 || closes.Load() != 1 {
		t.Errorf("%d loads and %d closes for 8 holders of one Model, want 1 and 1", loads.Load(), closes.Load())
	}
	if _, release, err := acquire(context.Background(), m); err != nil || release() != nil || loads.Load() != 2 {
		t.Errorf("after the last release a Setup loads again: err %v, loads %d", err, loads.Load())
	}
}

func TestPoolRetriesFailedLoad(t *testing.T) {
	var calls atomic.Int32
	boom := errors.New("disk on fire")
	RegisterLoader("unit-flaky", func(context.Context, Model) (serving.Predictor, error) {
		if calls.Add(1) == 1 {
			return nil, boom
		}
		return servingtest.Linear(1), nil
	})
	m := Model{Loader: "unit-flaky"}
	if _, _, err := acquire(context.Background(), m); !errors.Is(err, boom) {
		t.Fatalf("first acquire: %v, want the loader's error", err)
	}
	_, release, err := acquire(context.Background(), m)
	if err != nil {
		t.Fatalf("second acquire after a failed load: %v", err)
	}
	release()
}

func TestPoolWaitHonoursContext(t *testing.T) {
	gate := make(chan struct{})
	RegisterLoader("unit-slow", func(context.Context, Model) (serving.Predictor, error) {
		<-gate
		return servingtest.Linear(1), nil
	})
	m := Model{Loader: "unit-slow"}
	done := make(chan func() error)
	go func() {
		_, release, _ := acquire(context.Background(), m)
		done <- release
	}()
	poll.Until(t, "the load to start", func() bool {
		pool.Lock()
		defer pool.Unlock()
		_, loading := pool.m[`{"loader":"unit-slow"}`]
		return loading
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := acquire(ctx, m); serving.CodeOf(err) != serving.Canceled {
		t.Errorf("waiting acquire with a cancelled ctx: %v, want Canceled", err)
	}
	close(gate)
	if err := (<-done)(); err != nil {
		t.Error(err)
	}
}

func TestRegisterLoaderRefusesDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second loader under one name was accepted")
		}
	}()
	RegisterLoader("unit-mixed", func(context.Context, Model) (serving.Predictor, error) { return nil, nil })
}

type closeCounter struct {
	serving.Predictor
	n *atomic.Int32
}

func (c *closeCounter) Close() error {
	c.n.Add(1)
	return nil
}

func TestManyRowShapesStayBounded(t *testing.T) {
	var rows []Row
	for i := range 60 {
		x := make([]float64, i%20+1) // 20 shapes, more than maxPending
		x[0] = float64(i)
		rows = append(rows, Row{Key: strconv.Itoa(i), Inputs: map[string][]float64{"x": x}})
	}
	fn := &scoreFn{Model: Model{Loader: "unit-ragged"}}
	e, err := bundle(t, fn, rows...)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.results) != len(rows) {
		t.Fatalf("%d results for %d rows", len(e.results), len(rows))
	}
	for _, r := range e.results {
		i, _ := strconv.Atoi(r.Key)
		if y := r.Outputs["y"]; len(y) != i%20+1 || y[0] != float64(i) {
			t.Errorf("row %d: %v", i, y)
		}
	}
	if reqs := lastRecorder.Load().Requests(); len(reqs) <= 20 {
		t.Errorf("%d requests: rows of 20 shapes were all held to the end of the bundle, past maxPending", len(reqs))
	}
}

package onnx_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/internal/alloctest"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// TestPredictAllocBudget holds Predict to at most 2 allocations more than
// onnxruntime_go's own Run on preallocated tensors (the response with its
// outputs, shapes and the header its output's interface points at, and
// the output's data) with a background ctx or a cancellable one (which
// the model's watcher, watch.go, watches at no allocation a run), and to
// the bytes of the response beside the output data. The race detector
// makes sync.Pool drop frames at random, so the test skips under it.
func TestPredictAllocBudget(t *testing.T) {
	if alloctest.Race {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	requireORT(t)
	m := loadFraud(t)
	s := rawFraud(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range batches {
		in, out := rawFraudValues(t, n)
		ins, outs := []ort.Value{in}, []ort.Value{out}
		raw := perRun(func() {
			if err := s.Run(ins, outs); err != nil {
				t.Fatal(err)
			}
		})
		req := fraudRows(n)
		for _, c := range []struct {
			name  string
			ctx   context.Context
			extra float64
		}{{"background", context.Background(), 2}, {"cancellable", ctx, 2}} {
			got := perRun(func() {
				if _, err := m.Predict(c.ctx, req); err != nil {
					t.Fatal(err)
				}
			})
			if got.allocs > raw.allocs+c.extra {
				t.Errorf("batch %d, %s ctx: %.0f allocations per Predict, raw ORT %.0f: want at most %.0f more", n, c.name, got.allocs, raw.allocs, c.extra)
			}
			// The output is n float32s; the response, its tensor and
			// shape fit in 384 bytes.
			if limit := raw.bytes + uint64(4*n) + 384; got.bytes > limit {
				t.Errorf("batch %d, %s ctx: %d bytes per Predict, want at most %d", n, c.name, got.bytes, limit)
			}
		}
	}
}

// TestAnswersAreTheirOwn: answers copied out of pooled frames, whose
// interfaces point into the response's own allocation (boxIn), keep
// their values through a collection and through later runs on the same
// frames, and a caller writing into one answer changes nothing else.
func TestAnswersAreTheirOwn(t *testing.T) {
	m := loadFraud(t)
	for _, n := range []int{1, 3, 32} {
		type kept struct {
			x    []float32
			resp *serving.Response
		}
		var all []kept
		for k := range 48 {
			req := fraudRows(n)
			x, _ := serving.Values[float32](req.Inputs[0])
			for i := range x {
				x[i] *= float32(k%7) - 3
			}
			resp, err := m.Predict(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, kept{x, resp})
			if k%16 == 0 {
				runtime.GC()
			}
		}
		runtime.GC()
		for k, c := range all {
			s, _ := c.resp.Output("score")
			got, err := serving.Values[float32](s)
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := s.Data().([]float32); !ok || &d[0] != &got[0] {
				t.Fatalf("batch %d answer %d: Data() %T is not the values", n, k, s.Data())
			}
			want, _ := onnxbuild.FraudSpec().Eval(c.x)
			if !reflect.DeepEqual(s.Shape, []int64{int64(n), 1}) || len(got) != len(want) {
				t.Fatalf("batch %d answer %d: shape %v, %d values", n, k, s.Shape, len(got))
			}
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-5 {
					t.Fatalf("batch %d answer %d: score[%d] = %v after later runs, want %v", n, k, i, got[i], want[i])
				}
			}
			for i := range got {
				got[i] = float32(math.NaN())
			}
		}
		predictFraud(t, m, fraudRows(n), fmt.Sprintf("batch %d, after callers wrote into earlier answers", n))
	}
}

type cost struct {
	allocs float64
	bytes  uint64
}

// perRun is the least cost of f over a few rounds: a collection in the
// middle of one empties the pools and can only add.
func perRun(f func()) cost {
	const runs = 200
	least := cost{allocs: 1e9, bytes: 1 << 62}
	f() // warm
	for range 3 {
		b := alloctest.Once(func() {
			for range runs {
				f()
			}
		})
		least.allocs = min(least.allocs, testing.AllocsPerRun(runs, f))
		least.bytes = min(least.bytes, b/runs)
	}
	return least
}

// TestOutputDimZeroNotTheBatch: an output whose dynamic dim 0 is not the
// batch (here a Reshape to [-1, 1], 3 rows per input row) is first
// preallocated from the batch, which ONNX Runtime refuses; the run is
// retried with the output left to ONNX Runtime, and later runs, pooled
// frames and large batches included, go straight there.
func TestOutputDimZeroNotTheBatch(t *testing.T) {
	g := onnxbuild.NewGraph("flatten")
	g.Input("x", onnxbuild.Float, -1, 3)
	g.Initializer("shape", onnxbuild.Int64, []int64{2}, []int64{-1, 1})
	g.Node("Reshape", []string{"x", "shape"}, []string{"y"})
	g.Output("y", onnxbuild.Float, -1, 1)
	b, err := g.Model(onnxbuild.DefaultOpset)
	m := loadBytes(t, "flatten", b, err)
	for _, n := range []int{2, 2, 5, 300} {
		x := make([]float32, 3*n)
		for i := range x {
			x[i] = float32(i) - 0.5
		}
		in, _ := serving.NewTensor("x", []int64{int64(n), 3}, x)
		resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		y := resp.Outputs[0]
		got, _ := serving.Values[float32](y)
		if !reflect.DeepEqual(y.Shape, []int64{int64(3 * n), 1}) || !reflect.DeepEqual(got, x) {
			t.Errorf("batch %d: y %v %v, want [%d 1] %v", n, y.Shape, got, 3*n, x)
		}
	}
}

// TestCarvedLargeInput: an input over the copy threshold is handed to
// ONNX Runtime in place, so it must be an allocation of its own (doc.go,
// "The cgo pointer rule"). One carved from a struct that holds a Go
// pointer makes cgo panic; Predict turns that into an Internal error
// naming the panic, and the model keeps answering.
func TestCarvedLargeInput(t *testing.T) {
	m := loadFraud(t)
	type carved struct {
		x    [300 * 8]float32 // 9.6 KB: over the threshold
		next *carved
	}
	c := &carved{}
	c.next = c
	in, err := serving.NewTensor("features", []int64{300, 8}, c.x[:])
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{in}})
	wantErr(t, err, serving.Internal, "panic", "Go pointer")
	if _, err := m.Predict(context.Background(), fraudRows(300)); err != nil {
		t.Fatalf("Predict after a recovered panic: %v", err)
	}
}

// TestOutputSelection: outputs come back in the order asked, an output
// asked twice comes twice (with data of its own when copied out of a
// pooled frame), and a request with both a bad input and an unknown output
// is refused for the input, as Metadata.Validate orders its checks.
func TestOutputSelection(t *testing.T) {
	b, err := onnxbuild.AddSub(onnxbuild.Float, 4)
	m := loadBytes(t, "simple", b, err)
	x0, _ := serving.NewTensor("INPUT0", []int64{1, 4}, []float32{1, 2, 3, 4})
	x1, _ := serving.NewTensor("INPUT1", []int64{1, 4}, []float32{4, 3, 2, 1})
	req := &serving.Request{Inputs: []serving.Tensor{x0, x1}, Outputs: []string{"OUTPUT1", "OUTPUT0", "OUTPUT1"}}
	resp, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"OUTPUT0": {5, 5, 5, 5}, "OUTPUT1": {-3, -1, 1, 3}}
	if len(resp.Outputs) != 3 {
		t.Fatalf("%d outputs, want 3", len(resp.Outputs))
	}
	for k, o := range resp.Outputs {
		got, _ := serving.Values[float32](o)
		if o.Name != req.Outputs[k] || !reflect.DeepEqual(got, want[o.Name]) || !reflect.DeepEqual(o.Shape, []int64{1, 4}) {
			t.Errorf("output %d: %s %v %v, want %s %v [1 4]", k, o.Name, o.Shape, got, req.Outputs[k], want[req.Outputs[k]])
		}
	}
	a, _ := serving.Values[float32](resp.Outputs[0])
	c, _ := serving.Values[float32](resp.Outputs[2])
	a[0] = 99
	if c[0] == 99 {
		t.Error("an output asked twice shares its data")
	}
	resp.Outputs[0].Shape[0] = 7
	if resp.Outputs[1].Shape[0] != 1 || resp.Outputs[2].Shape[0] != 1 {
		t.Error("outputs share their shapes")
	}

	bad, _ := serving.NewTensor("INPUT0", []int64{1, 3}, []float32{1, 2, 3})
	_, err = m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{bad, x1}, Outputs: []string{"nope"}})
	wantErr(t, err, serving.InvalidArgument, "INPUT0")
	_, err = m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{x0, x1}, Outputs: []string{"OUTPUT0", "nope"}})
	wantErr(t, err, serving.NotFound, `"nope"`)
}

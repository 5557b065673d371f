package onnx_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
)

// slowSines is a model whose cost the data sets, at a fixed shape: its
// input n (INT64 [1]) becomes the vector 0, 1, …, n-1, to which Sin is
// applied sinLayers times, and y (FP32 [1]) is the sum. n = 1 runs in a
// moment; n = slowN runs for seconds (400 passes over 16 MB), in
// nodes of a few milliseconds each, so a run that is not stopped at a node
// boundary shows as a run that completes.
const (
	sinLayers = 400
	slowN     = 1 << 22
)

func loadSlowSines(t *testing.T) *onnx.Model {
	t.Helper()
	g := onnxbuild.NewGraph("slow_sines")
	g.Input("n", onnxbuild.Int64, 1)
	g.Initializer("scalar", onnxbuild.Int64, []int64{0}, []int64{})
	g.Initializer("zero", onnxbuild.Int64, nil, []int64{0})
	g.Initializer("one", onnxbuild.Int64, nil, []int64{1})
	g.Node("Reshape", []string{"n", "scalar"}, []string{"limit"})
	g.Node("Range", []string{"zero", "limit", "one"}, []string{"ints"})
	g.Node("Cast", []string{"ints"}, []string{"x0"}, onnxbuild.AttrInt("to", int64(onnxbuild.Float)))
	x := "x0"
	for i := range sinLayers {
		next := "x" + strconv.Itoa(i+1)
		g.Node("Sin", []string{x}, []string{next})
		x = next
	}
	g.Node("ReduceSum", []string{x}, []string{"y"}, onnxbuild.AttrInt("keepdims", 1))
	g.Output("y", onnxbuild.Float, 1)
	b, err := g.Model(onnxbuild.DefaultOpset)
	return loadBytes(t, "slow_sines", b, err, onnx.WithGraphOptimization(onnx.OptimizeNone))
}

func sinesRequest(n int64) *serving.Request {
	t, err := serving.NewTensor("n", []int64{1}, []int64{n})
	if err != nil {
		panic(err)
	}
	return &serving.Request{Inputs: []serving.Tensor{t}}
}

// wantSines checks y for n = 2: sin applied sinLayers times to 0 and to 1.
func wantSines(t *testing.T, resp *serving.Response) {
	t.Helper()
	y, err := serving.Values[float32](resp.Outputs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := 1.0
	for range sinLayers {
		want = math.Sin(want)
	}
	if len(y) != 1 || math.Abs(float64(y[0])-want) > 1e-4 {
		t.Errorf("y = %v, want [%.6f]", y, want)
	}
}

// hookCtx is a cancellable context that calls onErr the first time its Err
// is called: Predict checks its ctx once on entry, after it has taken its
// reference to the session and before the run, so the hook marks "this
// Predict is in flight" without a sleep.
type hookCtx struct {
	context.Context
	once  sync.Once
	onErr func()
}

func (c *hookCtx) Err() error {
	err := c.Context.Err() // before the hook, which may cancel
	c.once.Do(c.onErr)
	return err
}

// TestCancelStopsRun: a ctx that ends during a run stops it at the next
// operator boundary (the batcher relies on this to free a run from a
// request whose caller left), the error is the ctx's, and the model runs
// normally afterwards.
func TestCancelStopsRun(t *testing.T) {
	m := loadSlowSines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := m.Predict(ctx, sinesRequest(2)) // arms the terminate flag, and is not cancelled
	if err != nil {
		t.Fatal(err)
	}
	wantSines(t, resp)

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	// Cancelled after the entry check, so only ONNX Runtime's terminate
	// flag can end the run; without it the run completes in seconds.
	_, err = m.Predict(&hookCtx{Context: ctx2, onErr: cancel2}, sinesRequest(slowN))
	if code := serving.CodeOf(err); code != serving.Canceled {
		t.Fatalf("Predict with a ctx cancelled during the run: %v (code %v), want Canceled", err, code)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	for range 3 { // the frames and run options of a stopped run are reused
		resp, err = m.Predict(ctx, sinesRequest(2))
		if err != nil {
			t.Fatalf("Predict after a stopped run: %v", err)
		}
		wantSines(t, resp)
	}
}

// TestCancelStopsConcurrentRuns: runs watched at the same time, some
// cancelled while running and some not, each get their own outcome (the
// watcher's list drops and moves runs as they end), and the model's
// watcher goroutine is gone after Close (goleak, TestMain).
func TestCancelStopsConcurrentRuns(t *testing.T) {
	m := loadSlowSines(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%2 == 0 {
					_, err := m.Predict(&hookCtx{Context: ctx, onErr: cancel}, sinesRequest(slowN))
					if code := serving.CodeOf(err); code != serving.Canceled {
						t.Errorf("a run cancelled while in flight: %v (code %v), want Canceled", err, code)
					}
				} else {
					if _, err := m.Predict(ctx, sinesRequest(2)); err != nil {
						t.Errorf("a run not cancelled beside cancelled ones: %v", err)
					}
				}
				cancel()
			}
		})
	}
	wg.Wait()
}

// TestCloseWaitsForRunInFlight: Close refuses new runs at once, with
// ErrClosed, while a run is in flight (no lock is held across the run,
// which would queue them behind it), and returns only once that run has
// returned.
func TestCloseWaitsForRunInFlight(t *testing.T) {
	m := loadSlowSines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		_, err := m.Predict(&hookCtx{Context: ctx, onErr: func() { close(entered) }}, sinesRequest(slowN))
		result <- err
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	poll.Until(t, "Close to refuse new runs", func() bool { return !m.Ready() })
	if _, err := m.Predict(context.Background(), sinesRequest(2)); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Predict after Close began: %v, want ErrClosed", err)
	}
	select {
	case err := <-result:
		t.Fatalf("the run in flight ended (%v) before a Predict after Close was refused: new runs queue behind runs in flight", err)
	case <-closed:
		t.Fatal("Close returned while a run was in flight")
	default:
	}
	cancel() // ends the run at its next node
	if err := <-result; serving.CodeOf(err) != serving.Canceled {
		t.Errorf("the run in flight: %v, want Canceled", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentClose: Closes racing each other and Predicts all return,
// every Predict answers or gets ErrClosed, and the session is released
// once.
func TestConcurrentClose(t *testing.T) {
	m := loadFraud(t)
	before := onnx.LiveSessions()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 8 {
		wg.Go(func() {
			<-start
			if i%2 == 0 {
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			for range 32 {
				if _, err := m.Predict(context.Background(), fraudRows(3)); err != nil && !errors.Is(err, serving.ErrClosed) {
					t.Errorf("Predict: %v", err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := onnx.LiveSessions(); got != before-1 {
		t.Errorf("live sessions %d after Close, want %d", got, before-1)
	}
	if m.Ready() {
		t.Error("ready after Close")
	}
}

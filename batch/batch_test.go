package batch_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			b, err := batch.New(servingtest.Linear(4), batch.WithMaxDelay(100*time.Microsecond))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Request:       func() *serving.Request { return servingtest.Rows(4, 2, 1) },
		Deterministic: true,
	})
}

func TestConformanceMiddleware(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			return batch.Middleware(batch.WithMaxBatchRows(3))(servingtest.Linear(2))
		},
		Request:       func() *serving.Request { return servingtest.Rows(2, 5, 0) }, // split into 3+2
		Deterministic: true,
	})
}

func TestNewRejectsWhatCannotBatch(t *testing.T) {
	if _, err := batch.New(servingtest.Static()); !errors.Is(err, batch.ErrNotBatchable) {
		t.Errorf("no metadata: %v, want ErrNotBatchable", err)
	}
	fixed := servingtest.Static().WithMetadata(serving.Metadata{Name: "fixed",
		Inputs:  []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{1, 4}}},
		Outputs: []serving.TensorSpec{{Name: "y", DataType: serving.FP32, Shape: []int64{1, 4}}}})
	if _, err := batch.New(fixed); !errors.Is(err, batch.ErrNotBatchable) {
		t.Errorf("fixed batch dim: %v, want ErrNotBatchable", err)
	}
	if p := batch.Middleware()(fixed); p != serving.Predictor(fixed) {
		t.Errorf("Middleware on a non-batchable model = %T, want the model itself", p)
	}
	for _, opt := range []batch.Option{batch.WithMaxBatchRows(0), batch.WithMaxDelay(-1), batch.WithMaxInFlight(0),
		batch.WithMaxQueueRows(0), batch.WithPriorityLevels(2, 3), batch.WithPreferredBatchRows(4, 100)} {
		if _, err := batch.New(servingtest.Linear(1), opt); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("invalid option: %v, want invalid_argument", err)
		}
		p := batch.Middleware(opt)(servingtest.Linear(1))
		if _, err := p.Predict(context.Background(), servingtest.Rows(1, 1, 0)); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("Middleware with an invalid option: Predict = %v, want invalid_argument", err)
		}
	}
}

func TestOverloadRejectsAtOnce(t *testing.T) {
	g := newGate(1)
	b := mustNew(t, g.model, batch.WithMaxInFlight(1), batch.WithMaxBatchRows(4), batch.WithMaxQueueRows(5), batch.WithMaxDelay(0))
	ctx := context.Background()
	first := async(ctx, b, servingtest.Rows(1, 1, 0))
	<-g.entered // the model is busy; the rest queues
	a := async(ctx, b, servingtest.Rows(1, 3, 0))
	c := async(ctx, b, servingtest.Rows(1, 2, 0))
	waitQueued(t, b, 2) // 5 rows: the bound
	_, err := b.Predict(ctx, servingtest.Rows(1, 1, 0))
	if !errors.Is(err, serving.ErrOverloaded) || serving.CodeOf(err) != serving.ResourceExhausted {
		t.Fatalf("Predict on a full queue: %v, want ErrOverloaded (resource_exhausted)", err)
	}
	if serving.RetryAfterOf(err) <= 0 {
		t.Errorf("RetryAfter = %v, want > 0", serving.RetryAfterOf(err))
	}
	if got := b.Stats().Rejected.Overloaded; got != 1 {
		t.Errorf("Rejected.Overloaded = %d, want 1", got)
	}
	g.release(3)
	for _, ch := range []<-chan answer{first, a, c} {
		if r := <-ch; r.err != nil {
			t.Error(r.err)
		}
	}
}

func TestCanceledWhileQueuedNeverRuns(t *testing.T) {
	g := newGate(1)
	rec := servingtest.NewRecorder(g.model)
	b := mustNew(t, rec, batch.WithMaxInFlight(1), batch.WithMaxDelay(0))
	first := async(context.Background(), b, servingtest.Rows(1, 1, 0))
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	queuedCall := async(ctx, b, servingtest.Rows(1, 7, 0))
	ctx2, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(time.Hour))
	defer cancel2()
	waitQueued(t, b, 1)
	cancel()
	if r := <-queuedCall; serving.CodeOf(r.err) != serving.Canceled {
		t.Fatalf("cancelled while queued: %v, want canceled", r.err)
	}
	if got := b.Stats(); got.QueuedRows != 0 || got.Rejected.Canceled != 1 {
		t.Errorf("after cancel: %d rows queued, %d canceled; want 0, 1", got.QueuedRows, got.Rejected.Canceled)
	}
	// A later request still runs: the cancelled one held nobody back.
	later := async(ctx2, b, servingtest.Rows(1, 2, 0))
	g.release(2)
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	if r := <-later; r.err != nil {
		t.Fatal(r.err)
	}
	if got := rowCount(rec); got != 3 {
		t.Errorf("the model ran %d rows, want 3 (the 7 cancelled rows must not run)", got)
	}
}

func TestCallerLeavesRunningBatch(t *testing.T) {
	g := newGate(1)
	b := mustNew(t, g.model, batch.WithMaxInFlight(1), batch.WithMaxDelay(0))
	first := async(context.Background(), b, servingtest.Rows(1, 1, 0))
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	leaver := async(ctx, b, servingtest.Rows(1, 1, 10))
	stayer := async(context.Background(), b, servingtest.Rows(1, 1, 20))
	waitQueued(t, b, 2)
	g.release(1)
	<-first
	if rows := <-g.entered; rows != 2 {
		t.Fatalf("second batch has %d rows, want 2", rows)
	}
	cancel() // its batch is running: the caller still returns at once
	if r := <-leaver; serving.CodeOf(r.err) != serving.Canceled {
		t.Fatalf("leaver: %v, want canceled", r.err)
	}
	g.release(1)
	r := <-stayer
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := floats(t, r.resp, "y"); !slices.Equal(got, []float32{41}) {
		t.Errorf("stayer got %v, want [41]", got)
	}
}

func TestCulpritIsolation(t *testing.T) {
	lin := servingtest.Linear(1)
	md, _ := serving.MetadataOf(lin)
	// The model refuses the whole call when any row is negative.
	picky := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		x, _ := req.Input("x")
		v, _ := serving.Values[float32](x)
		for _, f := range v {
			if f < 0 {
				return nil, serving.Errorf(serving.InvalidArgument, "picky: negative value")
			}
		}
		return lin.Predict(ctx, req)
	}).WithMetadata(md)
	rec := servingtest.NewRecorder(picky)
	clk := newFakeClock()
	b := mustNew(t, rec, batch.WithAdaptive(false), batch.WithMaxDelay(time.Second), batch.WithClock(clk))
	ctx := context.Background()
	good1 := async(ctx, b, servingtest.Rows(1, 2, 1))
	bad := async(ctx, b, servingtest.Rows(1, 1, -5))
	good2 := async(ctx, b, servingtest.Rows(1, 1, 3))
	waitQueued(t, b, 3)
	clk.Advance(time.Second)
	for _, ch := range []<-chan answer{good1, good2} {
		if r := <-ch; r.err != nil {
			t.Errorf("a good neighbour failed: %v", r.err)
		}
	}
	if r := <-bad; serving.CodeOf(r.err) != serving.InvalidArgument {
		t.Errorf("culprit: %v, want invalid_argument", r.err)
	}
	// Joined, then halves of 1 and 2, then the half of 2 in halves if
	// the culprit is in it: 3 to 5 calls, depending on where it queued.
	if n := len(rec.Requests()); n < 3 || n > 5 {
		t.Errorf("model calls = %d, want 3 to 5 (joined, then halves)", n)
	}
	if got := b.Stats().Isolations; got < 1 || got > 2 {
		t.Errorf("Isolations = %d, want 1 or 2", got)
	}
}

func TestInvalidRequestNeverJoined(t *testing.T) {
	g := newGate(2)
	rec := servingtest.NewRecorder(g.model)
	b := mustNew(t, rec, batch.WithMaxInFlight(1), batch.WithMaxDelay(0))
	busy := async(context.Background(), b, servingtest.Rows(2, 1, 0))
	<-g.entered // the model is busy: the next requests would queue and join
	good := async(context.Background(), b, servingtest.Rows(2, 1, 0))
	waitQueued(t, b, 1)
	_, err := b.Predict(context.Background(), servingtest.Rows(3, 1, 0)) // width 3, model wants 2
	if serving.CodeOf(err) != serving.InvalidArgument {
		t.Fatalf("wrong width: %v, want invalid_argument", err)
	}
	g.release(2)
	for _, ch := range []<-chan answer{busy, good} {
		if r := <-ch; r.err != nil {
			t.Error(r.err)
		}
	}
	if got := rowCount(rec); got != 2 {
		t.Errorf("the model ran %d rows, want 2: the invalid request must not reach it", got)
	}
}

func TestPriorityOrder(t *testing.T) {
	g := newGate(1)
	rec := servingtest.NewRecorder(g.model)
	b := mustNew(t, rec, batch.WithMaxInFlight(1), batch.WithMaxBatchRows(1), batch.WithMaxDelay(0),
		batch.WithPriorityLevels(3, 2))
	ctx := context.Background()
	req := func(first float32, prio any) *serving.Request {
		r := servingtest.Rows(1, 1, first)
		if prio != nil {
			r.Params = serving.Params{serving.ParamPriority: prio}
		}
		return r
	}
	var chans []<-chan answer
	chans = append(chans, async(ctx, b, req(0, nil)))
	<-g.entered
	// Queued in this order: low (3), default (2), high (1 as a JSON float), low beyond the levels (9 → 3).
	for i, p := range []any{int64(3), nil, float64(1), "9"} {
		chans = append(chans, async(ctx, b, req(float32(i+1), p)))
		waitQueued(t, b, i+1)
	}
	g.release(5)
	for _, ch := range chans {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	var order []float32
	for _, r := range rec.Requests() {
		x, _ := r.Input("x")
		v, _ := serving.Values[float32](x)
		order = append(order, v[0])
	}
	if want := []float32{0, 3, 2, 1, 4}; !slices.Equal(order, want) {
		t.Errorf("run order %v, want %v (high, default, then low in FIFO order)", order, want)
	}
}

func TestDifferentShapesNeverJoined(t *testing.T) {
	md := serving.Metadata{Name: "ragged",
		Inputs:  []serving.TensorSpec{{Name: "x", DataType: serving.FP32, Shape: []int64{-1, -1}}},
		Outputs: []serving.TensorSpec{{Name: "n", DataType: serving.Int64, Shape: []int64{-1}}}}
	model := servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		x, _ := req.Input("x")
		n := make([]int64, x.Shape[0])
		for i := range n {
			n[i] = x.Shape[1]
		}
		out, err := serving.NewTensor("n", []int64{x.Shape[0]}, n)
		return &serving.Response{Outputs: []serving.Tensor{out}}, err
	}).WithMetadata(md)
	rec := servingtest.NewRecorder(model)
	clk := newFakeClock()
	b := mustNew(t, rec, batch.WithAdaptive(false), batch.WithMaxDelay(time.Second), batch.WithClock(clk))
	ctx := context.Background()
	var chans []<-chan answer
	for i, w := range []int{2, 3, 2, 3, 2} {
		chans = append(chans, async(ctx, b, servingtest.Rows(w, 1, 0)))
		waitQueued(t, b, i+1)
	}
	// Same shape, different requested outputs or params: separate keys too.
	r := servingtest.Rows(2, 1, 0)
	r.Outputs = []string{"n"}
	chans = append(chans, async(ctx, b, r))
	waitQueued(t, b, 6)
	clk.Advance(time.Second)
	for _, ch := range chans {
		if a := <-ch; a.err != nil {
			t.Fatal(a.err)
		}
	}
	poll.Until(t, "three calls", func() bool { return len(rec.Requests()) == 3 })
	for _, req := range rec.Requests() {
		x, _ := req.Input("x")
		switch {
		case x.Shape[1] == 2 && len(req.Outputs) == 0 && x.Shape[0] == 3,
			x.Shape[1] == 3 && x.Shape[0] == 2,
			x.Shape[1] == 2 && len(req.Outputs) == 1 && x.Shape[0] == 1:
		default:
			t.Errorf("unexpected batch %v outputs %v", x.Shape, req.Outputs)
		}
	}
}

func TestMaxDelayFromFirstQueued(t *testing.T) {
	rec := servingtest.NewRecorder(servingtest.Linear(1))
	clk := newFakeClock()
	const delay = 10 * time.Millisecond
	b := mustNew(t, rec, batch.WithAdaptive(false), batch.WithMaxDelay(delay), batch.WithClock(clk))
	t0 := clk.Now()
	ctx := context.Background()
	a := async(ctx, b, servingtest.Rows(1, 1, 0))
	clk.waitTimer(t, t0.Add(delay))
	clk.Advance(6 * time.Millisecond)
	c := async(ctx, b, servingtest.Rows(1, 1, 1))
	waitQueued(t, b, 2)
	// The scheduler saw the second request and still sleeps until t0+delay,
	// not until its own arrival + delay; nothing has run yet.
	clk.waitTimer(t, t0.Add(delay))
	if n := len(rec.Requests()); n != 0 {
		t.Fatalf("%d calls before the max delay passed, want 0", n)
	}
	clk.Advance(4 * time.Millisecond)
	for _, ch := range []<-chan answer{a, c} {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	reqs := rec.Requests()
	if len(reqs) != 1 || reqs[0].Rows() != 2 {
		t.Errorf("got %d calls, want one of 2 rows", len(reqs))
	}
	if s := b.Stats(); s.QueueTime != delay+4*time.Millisecond {
		t.Errorf("QueueTime = %v, want %v", s.QueueTime, delay+4*time.Millisecond)
	}
}

func TestFullBatchDispatchesBeforeDelay(t *testing.T) {
	rec := servingtest.NewRecorder(servingtest.Linear(1))
	clk := newFakeClock()
	b := mustNew(t, rec, batch.WithAdaptive(false), batch.WithMaxDelay(time.Hour), batch.WithClock(clk),
		batch.WithMaxBatchRows(4), batch.WithPreferredBatchRows(2, 4))
	ctx := context.Background()
	// Two rows reach the preferred size 2 and run at once, an hour before the
	// max delay; a third row alone waits for the clock.
	a := async(ctx, b, servingtest.Rows(1, 1, 0))
	waitQueued(t, b, 1)
	c := async(ctx, b, servingtest.Rows(1, 1, 1))
	for _, ch := range []<-chan answer{a, c} {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	d := async(ctx, b, servingtest.Rows(1, 1, 2))
	waitQueued(t, b, 1)
	clk.Advance(time.Hour)
	if r := <-d; r.err != nil {
		t.Fatal(r.err)
	}
	if n := len(rec.Requests()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
	for _, r := range rec.Requests() {
		if r.Rows() > 2 {
			t.Errorf("batch of %d rows, want ≤ 2", r.Rows())
		}
	}
}

func TestAdaptiveLoneRequestDoesNotWait(t *testing.T) {
	// With a fake clock that never moves, only the adaptive rule can
	// dispatch a lone request: if it waited for the max delay, it would
	// never be answered.
	clk := newFakeClock()
	b := mustNew(t, servingtest.Linear(1), batch.WithMaxDelay(time.Hour), batch.WithClock(clk))
	for i := range 5 {
		resp, err := b.Predict(context.Background(), servingtest.Rows(1, 1, float32(i)))
		if err != nil {
			t.Fatal(err)
		}
		if got := floats(t, resp, "y"); got[0] != 2*float32(i)+1 {
			t.Errorf("got %v", got)
		}
	}
}

func TestOversizeRequestIsSplit(t *testing.T) {
	rec := servingtest.NewRecorder(servingtest.Linear(2))
	b := mustNew(t, rec, batch.WithMaxBatchRows(4), batch.WithMaxDelay(0))
	req := servingtest.Rows(2, 10, 0)
	req.ID = "big"
	resp, err := b.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	y := floats(t, resp, "y")
	for i, v := range y {
		if v != 2*float32(i)+1 {
			t.Fatalf("y[%d] = %v, want %v", i, v, 2*float32(i)+1)
		}
	}
	if out, _ := resp.Output("y"); !slices.Equal(out.Shape, []int64{10, 2}) || resp.ID != "big" {
		t.Errorf("answer shape %v id %q", out.Shape, resp.ID)
	}
	for _, r := range rec.Requests() {
		if r.Rows() > 4 {
			t.Errorf("a run of %d rows passed the max of 4", r.Rows())
		}
	}
	if got := rowCount(rec); got != 10 {
		t.Errorf("ran %d rows, want 10", got)
	}
}

// threeQueued starts a batcher that never dispatches on its own (no
// adaptive mode, an hour's delay, a clock that stands still) and queues
// three one-row requests in it.
func threeQueued(t *testing.T) (*servingtest.Recorder, *batch.Batcher, []<-chan answer) {
	t.Helper()
	rec := servingtest.NewRecorder(servingtest.Linear(1))
	b, err := batch.New(rec, batch.WithAdaptive(false), batch.WithMaxDelay(time.Hour), batch.WithClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	var chans []<-chan answer
	for i := range 3 {
		chans = append(chans, async(context.Background(), b, servingtest.Rows(1, 1, float32(i))))
	}
	waitQueued(t, b, 3)
	return rec, b, chans
}

func TestShutdownDrains(t *testing.T) {
	_, b, chans := threeQueued(t)
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		if r := <-ch; r.err != nil {
			t.Errorf("drained request: %v", r.err)
		}
	}
	if _, err := b.Predict(context.Background(), servingtest.Rows(1, 1, 0)); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("after Shutdown: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestShutdownGivesUpWithContext(t *testing.T) {
	g := newGate(1)
	b, err := batch.New(g.model, batch.WithMaxInFlight(1), batch.WithMaxDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	// A cancellable caller ctx (never cancelled): Shutdown can only cancel
	// what can end (see Batcher.direct), and of a lone run, only one of
	// the locked path (two rows; fast_test.go has the fast path's).
	callerCtx, callerCancel := context.WithCancel(context.Background())
	defer callerCancel()
	running := async(callerCtx, b, servingtest.Rows(1, 2, 0))
	<-g.entered
	waiting := async(context.Background(), b, servingtest.Rows(1, 1, 0))
	waitQueued(t, b, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Shutdown(ctx); serving.CodeOf(err) != serving.Canceled {
		t.Errorf("Shutdown with a done ctx: %v, want canceled", err)
	}
	if r := <-waiting; !errors.Is(r.err, serving.ErrClosed) {
		t.Errorf("queued request: %v, want ErrClosed", r.err)
	}
	if r := <-running; r.err == nil {
		t.Errorf("running batch was not cancelled")
	}
	b.Close()
}

func TestCloseFailsQueued(t *testing.T) {
	rec, b, chans := threeQueued(t)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		if r := <-ch; !errors.Is(r.err, serving.ErrClosed) {
			t.Errorf("queued request after Close: %v, want ErrClosed", r.err)
		}
	}
	if n := len(rec.Requests()); n != 0 {
		t.Errorf("%d calls reached the model", n)
	}
	if got := b.Stats().Rejected.Closed; got != 3 {
		t.Errorf("Rejected.Closed = %d, want 3", got)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The rule on serving.Middleware: a Batcher owns the model it wraps, so its
// Close (after draining) closes the model; Shutdown drains and leaves the
// model open for Close. (A Middleware with an invalid option gives
// internal/broken's layer, which closes what it wraps too.)
func TestCloseClosesTheModel(t *testing.T) {
	servingtest.Ownership(t, batch.Middleware(), nil)

	model := servingtest.Linear(2)
	b, err := batch.New(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if model.Closes() != 0 {
		t.Fatal("Shutdown closed the model: Close does")
	}
	if err := b.Close(); err != nil || model.Closes() != 1 {
		t.Errorf("Close after Shutdown: %v, model closed %d times, want 1", err, model.Closes())
	}
}

package batch_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestRunningAloneRunsSideBySide(t *testing.T) {
	// While running alone is the mode, one-row requests under a ctx that
	// cannot end run in their callers' goroutines at once, beside one
	// another (most without the lock: loose.go), none queued.
	g := newGate(1)
	b := mustNew(t, g.model)
	batch.RunAlone(b)
	const n = 4
	calls := make([]<-chan answer, n)
	for i := range calls {
		calls[i] = async(context.Background(), b, servingtest.Rows(1, 1, float32(i)))
	}
	for range n {
		if rows := <-g.entered; rows != 1 {
			t.Fatalf("a run of %d rows, want 1", rows)
		}
	}
	if s := b.Stats(); s.QueuedReqs != 0 {
		t.Errorf("stats %+v: want none queued", s)
	}
	g.release(n)
	for i, c := range calls {
		r := <-c
		if r.err != nil {
			t.Fatal(r.err)
		}
		if y := floats(t, r.resp, "y"); y[0] != 2*float32(i)+1 {
			t.Errorf("request %d: y = %v, want %v", i, y, 2*float32(i)+1)
		}
	}
	// One took the fast path's run slot, the others ran without the lock.
	if s := b.Stats(); s.Batches != n || s.Requests != n || s.Rows != n || s.Direct != n || s.Alone != n-1 || s.Untimed != n {
		t.Errorf("stats %+v: want %d direct batches of one row, all untimed, %d alone", s, n, n-1)
	}
}

func TestRunningAloneStatsAndMetricsStayExact(t *testing.T) {
	// Runs alone without the lock record nothing as they run; what the
	// batcher publishes must still be what happened.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := servingtest.NewRecorder(servingtest.Linear(1))
	b := mustNew(t, rec, batch.WithMeterProvider(mp))
	batch.RunAlone(b)
	const callers, each = 8, 250
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				x := float32(c*each + i)
				resp, err := b.Predict(context.Background(), servingtest.Rows(1, 1, x))
				if err != nil {
					t.Error(err)
					return
				}
				if y := floats(t, resp, "y"); y[0] != 2*x+1 {
					t.Errorf("y = %v, want %v", y, 2*x+1)
					return
				}
			}
		})
	}
	wg.Wait()
	const n = callers * each
	s := b.Stats()
	if s.Batches != n || s.Requests != n || s.Rows != n || s.Direct != n || s.RowsPerBatch[0] != n || s.InFlight != 0 {
		t.Errorf("stats %+v, want %d direct batches of one request of one row", s, n)
	}
	if s.Untimed < n/2 {
		t.Errorf("stats %+v: %d of %d runs untimed, want most", s, s.Untimed, n)
	}
	if got := rowCount(rec); got != n {
		t.Errorf("the model ran %d rows, want %d", got, n)
	}
	h := histCounts(t, reader)
	for _, name := range []string{"servekit.batch.size", "servekit.batch.queue.duration"} {
		if h[name][0] != n {
			t.Errorf("%s: %v records, want %d", name, h[name][0], n)
		}
	}
	if h["servekit.batch.size"][1] != n {
		t.Errorf("servekit.batch.size: sum %v, want %d", h["servekit.batch.size"][1], n)
	}
}

func TestCloseWaitsForRunsAlone(t *testing.T) {
	// Close closes the model only once every run alone has answered, those
	// that took no lock included. Request x waits in the model for
	// release[x].
	const n = 3
	lin := servingtest.Linear(1)
	md, _ := serving.MetadataOf(lin)
	var release [n]chan struct{}
	for i := range release {
		release[i] = make(chan struct{})
	}
	entered := make(chan struct{}, n)
	m := &orderModel{}
	m.Fake = servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		x, err := serving.Values[float32](req.Inputs[0])
		if err != nil {
			return nil, err
		}
		entered <- struct{}{}
		<-release[int(x[0])]
		resp, err := lin.Predict(ctx, req)
		m.note("answered")
		return resp, err
	}).WithMetadata(md)
	b, err := batch.New(m)
	if err != nil {
		t.Fatal(err)
	}
	batch.RunAlone(b)
	// The first takes the fast path's run slot; the others run beside it
	// without the lock.
	calls := make([]<-chan answer, n)
	for i := range calls {
		calls[i] = async(context.Background(), b, servingtest.Rows(1, 1, float32(i)))
		<-entered
	}
	close(release[0])
	if r := <-calls[0]; r.err != nil {
		t.Fatal(r.err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	poll.Until(t, "Close began", func() bool { return !b.Ready() })
	// A request after Close began is refused, not run without the lock.
	if _, err := b.Predict(context.Background(), servingtest.Rows(1, 1, 0)); !errors.Is(err, serving.ErrClosed) {
		t.Errorf("Predict after Close: %v, want %v", err, serving.ErrClosed)
	}
	for i := 1; i < n; i++ {
		close(release[i])
		if r := <-calls[i]; r.err != nil {
			t.Errorf("a run alone: %v", r.err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Untimed != n {
		t.Errorf("stats %+v: want %d untimed runs (one fast, the others without the lock)", s, n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.Index(m.events, "close"); i != len(m.events)-1 || i != n {
		t.Errorf("events %v: want the model closed after the %d runs answered", m.events, n)
	}
}

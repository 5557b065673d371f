package rollout_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet keeps plan logs out of test output.
var quiet = rollout.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// instance is a fake version that answers with its identity ("who" = its
// id), so a test can check that Response.Version names the version that
// really answered, and that records any call after its Close.
type instance struct {
	version  string
	id       int64
	notReady atomic.Bool
	calls    atomic.Int64
	closes   atomic.Int64
	late     atomic.Int64  // calls that arrived after Close
	gate     chan struct{} // when set, Predict waits for it to close
}

var nextID atomic.Int64

func newInstance(version string) *instance {
	return &instance{version: version, id: nextID.Add(1)}
}

func (in *instance) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if in.closes.Load() > 0 {
		in.late.Add(1)
		return nil, serving.ErrClosed
	}
	if err := serving.ContextError(ctx, "instance"); err != nil {
		return nil, err
	}
	in.calls.Add(1)
	if in.gate != nil {
		select {
		case <-in.gate:
		case <-ctx.Done():
			return nil, serving.ContextError(ctx, "instance")
		}
	} else {
		runtime.Gosched() // widen the window in which a replace can overlap
	}
	if in.closes.Load() > 0 {
		in.late.Add(1) // closed while this call was inside
	}
	who, err := serving.NewTensor("who", []int64{1}, []int64{in.id})
	if err != nil {
		return nil, err
	}
	return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: []serving.Tensor{who}}, nil
}

func (in *instance) Ready() bool { return !in.notReady.Load() && in.closes.Load() == 0 }

func (in *instance) Close() error {
	in.closes.Add(1)
	return nil
}

// registry remembers every instance by id.
type registry struct {
	mu  sync.Mutex
	all map[int64]*instance
}

func (g *registry) add(version string) *instance {
	in := newInstance(version)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all == nil {
		g.all = make(map[int64]*instance)
	}
	g.all[in.id] = in
	return in
}

// who checks that resp was given by a registered instance of the version
// resp names, and returns that instance.
func (g *registry) who(resp *serving.Response) (*instance, error) {
	t, ok := resp.Output("who")
	if !ok {
		return nil, fmt.Errorf("response has no who output")
	}
	ids, err := serving.Values[int64](t)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	in := g.all[ids[0]]
	g.mu.Unlock()
	if in == nil {
		return nil, fmt.Errorf("unknown instance %d", ids[0])
	}
	if in.version != resp.Version {
		return nil, fmt.Errorf("response says version %q, answered by an instance of version %q", resp.Version, in.version)
	}
	return in, nil
}

func mustPut(t testing.TB, r *rollout.Router, v string, p serving.Predictor) {
	t.Helper()
	if err := r.Put(v, p); err != nil {
		t.Fatalf("Put(%q): %v", v, err)
	}
}

// keyed is a request routed by key.
func keyed(key string) *serving.Request {
	x, _ := serving.NewTensor("x", []int64{1, 1}, []float32{1})
	return &serving.Request{Model: "m", Key: key, Inputs: []serving.Tensor{x}}
}

func ask(t testing.TB, p serving.Predictor, req *serving.Request) *serving.Response {
	t.Helper()
	resp, err := p.Predict(context.Background(), req)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	return resp
}

// newRouter is rollout.New for options that are valid.
func newRouter(tb testing.TB, model string, opts ...rollout.Option) *rollout.Router {
	tb.Helper()
	r, err := rollout.New(model, opts...)
	require.NoError(tb, err)
	return r
}

package cache_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // the L2 tests make Redis fail on purpose
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// quietLog discards: the L2 tests have entries rejected on purpose.
var quietLog = slog.New(slog.DiscardHandler)

func newCache(t testing.TB, opts ...cache.Option) *cache.Cache {
	t.Helper()
	c, err := cache.New(append([]cache.Option{cache.WithLogger(quietLog)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// row is a one-row Linear request whose values start at first.
func row(first float32) *serving.Request { return servingtest.Rows(4, 1, first) }

func values(t *testing.T, resp *serving.Response) []float32 {
	t.Helper()
	y, ok := resp.Output("y")
	require.True(t, ok, "no output y in %+v", resp)
	v, err := serving.Values[float32](y)
	require.NoError(t, err)
	return v
}

// linearOf is what servingtest.Linear answers for row(first).
func linearOf(first float32) []float32 {
	out := make([]float32, 4)
	for i := range out {
		out[i] = 2*(first+float32(i)) + 1
	}
	return out
}

func TestConformance(t *testing.T) {
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			return newCache(t).Middleware()(servingtest.Linear(4))
		},
		Request:       func() *serving.Request { return servingtest.Rows(4, 2, 1) },
		Deterministic: true,
	})
}

func TestHitAnswersWithCallerID(t *testing.T) {
	c := newCache(t)
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	a, b := row(1), row(1)
	a.ID, b.ID = "first", "second"

	ra, err := p.Predict(context.Background(), a)
	require.NoError(t, err)
	rb, err := p.Predict(context.Background(), b)
	require.NoError(t, err)

	assert.Equal(t, "first", ra.ID)
	assert.Equal(t, "second", rb.ID)
	assert.Equal(t, linearOf(1), values(t, rb))
	assert.Equal(t, 1, model.Calls())
	st := c.Stats()
	assert.Equal(t, uint64(1), st.HitsL1)
	assert.Equal(t, uint64(1), st.Misses)
	assert.Equal(t, int64(1), st.Entries)
	assert.Positive(t, st.Bytes)
}

func TestCollidingHashesKeepAnswersApart(t *testing.T) {
	c := newCache(t, cache.WithHash(func(*serving.Request) uint64 { return 42 }))
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	for i, first := range []float32{1, 100, 1, 100, 100} {
		resp, err := p.Predict(context.Background(), row(first))
		require.NoError(t, err)
		assert.Equal(t, linearOf(first), values(t, resp), "call %d", i)
	}
	// Every switch of input replaced the shared slot; only the last repeat hit.
	assert.Equal(t, 4, model.Calls())
	assert.Equal(t, uint64(1), c.Stats().HitsL1)
}

func TestKeyDistinguishesWhatTheModelSees(t *testing.T) {
	f32, _ := serving.NewTensor("x", []int64{1}, []float32{1})
	i32, _ := serving.NewTensor("x", []int64{1}, []int32{int32(math.Float32bits(1))})
	f16, _ := serving.NewFP16("x", []int64{2}, []uint16{1, 2})
	u16, _ := serving.NewTensor("x", []int64{2}, []uint16{1, 2})
	ab, _ := serving.NewStrings("x", []int64{2}, []string{"ab", "c"})
	bc, _ := serving.NewStrings("x", []int64{2}, []string{"a", "bc"})
	flat, _ := serving.NewTensor("x", []int64{2}, []float32{1, 2})
	col, _ := serving.NewTensor("x", []int64{2, 1}, []float32{1, 2})
	pairs := [][2]*serving.Request{
		{{Inputs: []serving.Tensor{f32}}, {Inputs: []serving.Tensor{i32}}},
		{{Inputs: []serving.Tensor{f16}}, {Inputs: []serving.Tensor{u16}}},
		{{Inputs: []serving.Tensor{ab}}, {Inputs: []serving.Tensor{bc}}},
		{{Inputs: []serving.Tensor{flat}}, {Inputs: []serving.Tensor{col}}},
		{{Model: "ab", Version: "c"}, {Model: "a", Version: "bc"}},
		{{Outputs: []string{"a", "b"}}, {Outputs: []string{"ab"}}},
	}
	for i, p := range pairs {
		ka := cache.AppendKey(nil, p[0], "")
		assert.True(t, cache.KeyEqual(ka, p[0], ""), "pair %d: key of a equals a", i)
		assert.False(t, cache.KeyEqual(ka, p[1], ""), "pair %d: key of a equals b", i)
		assert.NotEqual(t, ka, cache.AppendKey(nil, p[1], ""), "pair %d", i)
		assert.True(t, cache.SameKey(p[0], "", p[0], ""), "pair %d: a is a", i)
		assert.False(t, cache.SameKey(p[0], "", p[1], ""), "pair %d: a is b", i)
	}
	// The fingerprint is part of the key, and its bytes cannot be confused
	// with the version's.
	one := row(1)
	assert.False(t, cache.KeyEqual(cache.AppendKey(nil, one, "fp1"), one, "fp2"))
	assert.False(t, cache.SameKey(one, "fp1", one, "fp2"))
	assert.True(t, cache.SameKey(one, "fp1", row(1), "fp1"))
	v := &serving.Request{Version: "1f"}
	assert.NotEqual(t, cache.AppendKey(nil, v, ""), cache.AppendKey(nil, &serving.Request{Version: "1"}, "f"))
	// NaNs compare by their bits: the same NaN is the same input.
	nan := float32(math.NaN())
	n1, _ := serving.NewTensor("x", []int64{1}, []float32{nan})
	n2, _ := serving.NewTensor("x", []int64{1}, []float32{nan})
	r1, r2 := &serving.Request{Inputs: []serving.Tensor{n1}}, &serving.Request{Inputs: []serving.Tensor{n2}}
	assert.True(t, cache.KeyEqual(cache.AppendKey(nil, r1, ""), r2, ""))
	assert.True(t, cache.SameKey(r1, "", r2, ""))
	// The Redis name is the SHA-256 of the canonical key, built or not.
	assert.Equal(t, sha256.Sum256(cache.AppendKey(nil, one, "fp")), cache.SumKey(one, "fp"))
}

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func predict(t *testing.T, p serving.Predictor, req *serving.Request) *serving.Response {
	t.Helper()
	resp, err := p.Predict(context.Background(), req)
	require.NoError(t, err)
	return resp
}

func TestTTLExpiresLazily(t *testing.T) {
	clk := newClock()
	c := newCache(t, cache.WithTTL(time.Minute), cache.WithClock(clk.now))
	model := servingtest.Linear(4)
	p := c.Middleware()(model)

	predict(t, p, row(1))
	clk.advance(59 * time.Second)
	predict(t, p, row(1))
	assert.Equal(t, 1, model.Calls(), "hit before the TTL")
	clk.advance(time.Second)
	predict(t, p, row(1))
	assert.Equal(t, 2, model.Calls(), "miss at the TTL")
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Expired)
	assert.Equal(t, int64(1), st.Entries, "the fresh answer replaced the expired one")
}

func TestEntryBoundEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(t, cache.WithMaxEntries(2))
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	predict(t, p, row(1))
	predict(t, p, row(2))
	predict(t, p, row(1)) // 1 is now the most recent
	predict(t, p, row(3)) // evicts 2
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Evictions)
	assert.Equal(t, int64(2), st.Entries)
	calls := model.Calls()
	predict(t, p, row(1))
	assert.Equal(t, calls, model.Calls(), "1 survived")
	predict(t, p, row(2))
	assert.Equal(t, calls+1, model.Calls(), "2 was evicted")
}

func TestByteBound(t *testing.T) {
	probe := newCache(t)
	predict(t, probe.Middleware()(servingtest.Linear(4)), row(1))
	size := probe.Stats().Bytes
	require.Positive(t, size)

	max := 2*size + size/2
	c := newCache(t, cache.WithMaxBytes(max))
	p := c.Middleware()(servingtest.Linear(4))
	for i := range 5 {
		predict(t, p, row(float32(i)))
		assert.LessOrEqual(t, c.Stats().Bytes, max)
	}
	st := c.Stats()
	assert.Equal(t, int64(2), st.Entries)
	assert.Equal(t, uint64(3), st.Evictions)
	assert.Equal(t, 2*size, st.Bytes)
}

func TestOversizeEntriesAreNotStored(t *testing.T) {
	c := newCache(t, cache.WithMaxEntryBytes(100))
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	predict(t, p, row(1))
	resp := predict(t, p, row(1))
	assert.Equal(t, linearOf(1), values(t, resp))
	assert.Equal(t, 2, model.Calls())
	assert.Zero(t, c.Stats().Entries)
}

// gate is a model that blocks until released, counting the calls that
// reached it and reporting when one starts.
type gate struct {
	calls    atomic.Int32
	started  chan struct{}
	release  chan struct{}
	canceled chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan struct{}, 100), release: make(chan struct{}), canceled: make(chan struct{}, 100)}
}

func (g *gate) model() serving.Predictor {
	lin := servingtest.Linear(4)
	return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		g.calls.Add(1)
		g.started <- struct{}{}
		select {
		case <-g.release:
			return lin.Predict(ctx, req)
		case <-ctx.Done():
			g.canceled <- struct{}{}
			return nil, serving.ContextError(ctx, "gate")
		}
	})
}

func TestCoalescingWithCancellations(t *testing.T) {
	c := newCache(t)
	g := newGate()
	p := c.Middleware()(g.model())

	// The first caller starts the computation, then gives up.
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := p.Predict(leaderCtx, row(1))
		leaderErr <- err
	}()
	<-g.started

	// Others join it; one of them will give up too.
	const n = 6
	waiterCtx, cancelWaiter := context.WithCancel(context.Background())
	waiterErr := make(chan error, 1)
	go func() {
		_, err := p.Predict(waiterCtx, row(1))
		waiterErr <- err
	}()
	var wg sync.WaitGroup
	answers := make(chan []float32, n)
	for i := range n {
		wg.Go(func() {
			req := row(1)
			req.ID = string(rune('a' + i))
			resp, err := p.Predict(context.Background(), req)
			if assert.NoError(t, err) {
				assert.Equal(t, req.ID, resp.ID)
				answers <- values(t, resp)
			}
		})
	}
	poll.Until(t, "waiters to join", func() bool { return c.Stats().Coalesced == n+1 })

	cancelWaiter()
	assert.Equal(t, serving.Canceled, serving.CodeOf(<-waiterErr), "a cancelled waiter returns while the model still runs")
	cancelLeader()
	assert.Equal(t, serving.Canceled, serving.CodeOf(<-leaderErr), "the cancelled first caller returns while the model still runs")
	assert.Empty(t, g.canceled, "the computation outlives the callers that left")

	close(g.release)
	wg.Wait()
	close(answers)
	for a := range answers {
		assert.Equal(t, linearOf(1), a)
	}
	assert.Equal(t, int32(1), g.calls.Load())
	assert.Equal(t, uint64(1), c.Stats().Misses)
}

func TestComputationStopsWhenEveryoneLeaves(t *testing.T) {
	c := newCache(t)
	g := newGate()
	p := c.Middleware()(g.model())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Predict(ctx, row(1))
		errc <- err
	}()
	<-g.started
	cancel()
	assert.Equal(t, serving.Canceled, serving.CodeOf(<-errc))
	<-g.canceled // the model saw its context end

	// The next caller starts afresh rather than joining the doomed call.
	close(g.release)
	assert.Equal(t, linearOf(1), values(t, predict(t, p, row(1))))
	assert.Equal(t, int32(2), g.calls.Load())
}

func TestDeadlineWhileWaiting(t *testing.T) {
	c := newCache(t)
	g := newGate()
	p := c.Middleware()(g.model())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := p.Predict(ctx, row(1))
	assert.Equal(t, serving.DeadlineExceeded, serving.CodeOf(err))
	close(g.release)
}

func TestErrorsAreNotCached(t *testing.T) {
	c := newCache(t)
	lin := servingtest.Linear(4)
	var calls atomic.Int32
	model := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		if calls.Add(1) == 1 {
			return nil, serving.Errorf(serving.Unavailable, "test: warming up")
		}
		return lin.Predict(ctx, req)
	})
	p := c.Middleware()(model)
	_, err := p.Predict(context.Background(), row(1))
	assert.Equal(t, serving.Unavailable, serving.CodeOf(err))
	assert.Zero(t, c.Stats().Entries)
	predict(t, p, row(1))
	predict(t, p, row(1))
	assert.Equal(t, int32(2), calls.Load())
}

func TestModelPanicIsAnInternalError(t *testing.T) {
	c := newCache(t)
	p := c.Middleware()(servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		panic("boom")
	}))
	ctx, cancel := context.WithCancel(context.Background()) // the goroutine path
	defer cancel()
	_, err := p.Predict(ctx, row(1))
	assert.Equal(t, serving.Internal, serving.CodeOf(err))
}

func TestBypass(t *testing.T) {
	c := newCache(t)
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	predict(t, p, row(1))
	bypass := func() *serving.Request {
		r := row(1)
		r.Params = serving.Params{serving.ParamCacheBypass: true}
		return r
	}
	predict(t, p, bypass())
	assert.Equal(t, 2, model.Calls(), "bypass does not read")
	predict(t, p, bypass2(2))
	predict(t, p, row(2))
	assert.Equal(t, 4, model.Calls(), "bypass does not write")
	assert.Equal(t, uint64(2), c.Stats().Bypassed)
}

func bypass2(first float32) *serving.Request {
	r := row(first)
	r.Params = serving.Params{serving.ParamCacheBypass: "true"}
	return r
}

func TestVersionsAreIsolated(t *testing.T) {
	c := newCache(t)
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	v1, v2 := row(1), row(1)
	v1.Version, v2.Version = "1", "2"
	assert.Equal(t, "1", predict(t, p, v1).Version)
	assert.Equal(t, "2", predict(t, p, v2).Version)
	assert.Equal(t, 2, model.Calls())
}

func TestPurge(t *testing.T) {
	c := newCache(t)
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	predict(t, p, row(1))
	c.Purge()
	st := c.Stats()
	assert.Zero(t, st.Entries)
	assert.Zero(t, st.Bytes)
	assert.Zero(t, st.Evictions, "purged entries are not evictions")
	predict(t, p, row(1))
	assert.Equal(t, 2, model.Calls())
}

func TestUncacheableInputsGoStraightToTheModel(t *testing.T) {
	c := newCache(t)
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	req := row(1)
	req.Inputs[0].Shape = []int64{2, 4} // lies about its data
	_, err := p.Predict(context.Background(), req)
	assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err))
	assert.Equal(t, uint64(1), c.Stats().Bypassed)
}

func TestClosedCachePassesThrough(t *testing.T) {
	c, err := cache.New()
	require.NoError(t, err)
	model := servingtest.Linear(4)
	p := c.Middleware()(model)
	predict(t, p, row(1))
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.Equal(t, linearOf(1), values(t, predict(t, p, row(1))))
	assert.Equal(t, 2, model.Calls())
}

func TestMiddlewareCloseLeavesTheCacheOpen(t *testing.T) {
	c := newCache(t)
	model := servingtest.Linear(4)
	a, b := c.Middleware()(model), c.Middleware()(model)
	predict(t, a, row(1))
	require.NoError(t, serving.Close(a))
	_, err := a.Predict(context.Background(), row(1))
	assert.True(t, errors.Is(err, serving.ErrClosed))
	_, ok := serving.MetadataOf(b)
	assert.True(t, ok, "metadata seen through the layer")
	assert.Equal(t, int64(1), c.Stats().Entries)
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []cache.Option{
		cache.WithMaxEntries(0), cache.WithMaxBytes(-1), cache.WithLogger(nil),
		cache.WithTTL(-time.Second), cache.WithMaxEntryBytes(0), cache.WithComputeTimeout(0),
	} {
		_, err := cache.New(o)
		assert.Equal(t, serving.InvalidArgument, serving.CodeOf(err))
	}
}

func TestComputationDoesNotReadTheLeadersBuffers(t *testing.T) {
	c := newCache(t)
	g := newGate()
	p := c.Middleware()(g.model())

	leader := row(1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Predict(ctx, leader)
		errc <- err
	}()
	<-g.started
	got := make(chan *serving.Response, 1)
	go func() {
		resp, err := p.Predict(context.Background(), row(1))
		assert.NoError(t, err)
		got <- resp
	}()
	poll.Until(t, "the waiter to join", func() bool { return c.Stats().Coalesced == 1 })
	cancel()
	<-errc
	// The leader has returned: its buffers are its own again.
	x, _ := serving.Values[float32](leader.Inputs[0])
	for i := range x {
		x[i] = -7
	}
	close(g.release)
	assert.Equal(t, linearOf(1), values(t, <-got))
	assert.Equal(t, linearOf(1), values(t, predict(t, p, row(1))), "the entry is the answer to its key")
	assert.Equal(t, int32(1), g.calls.Load())
}

// The rule on serving.Middleware: the cache layer owns the model it wraps
// and closes it; the Cache, handed to it and shared with another chain,
// stays open and keeps caching for that chain.
func TestCloseClosesTheModelNotTheCache(t *testing.T) {
	c := newCache(t)
	servingtest.Ownership(t, c.Middleware(), func(t *testing.T, p serving.Predictor) {
		predict(t, p, servingtest.Rows(2, 1, 0))
		st := c.Stats()
		assert.Equal(t, [2]uint64{1, 1}, [2]uint64{st.Misses, st.HitsL1}, "misses and hits after the first chain closed")
	})
}

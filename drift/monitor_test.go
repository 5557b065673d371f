package drift_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMonitorRaisesAndClears(t *testing.T) {
	var mu sync.Mutex
	var alerts []drift.Alert
	m := newMonitor(t,
		drift.WithProfile(referenceProfile(t, 5000)),
		drift.WithWindow(drift.CountWindow(500, 0)),
		drift.WithAlertFunc(func(a drift.Alert) {
			mu.Lock()
			alerts = append(alerts, a)
			mu.Unlock()
		}))
	p := m.Middleware()(servingtest.Linear(2))
	g := newGen(2)

	serve(t, p, g, 2000, 50, 0) // four windows like the reference
	flush(t, m)
	res := m.Results("linear", "1")
	require.Equal(t, 4, len(res))
	for _, r := range res {
		assert.Empty(t, r.Alarmed, "window %d: %s", r.Window.Index, r.Reason())
		assert.Equal(t, int64(500), r.Window.Rows)
	}
	require.NoError(t, m.Status("linear", "1").Err())

	serve(t, p, g, 500, 50, 1) // one shifted window: drift, no alarm yet
	flush(t, m)
	last := m.Results("linear", "1")[0]
	assert.Equal(t, []string{"a", "score"}, last.Drifted)
	assert.Empty(t, last.Alarmed)
	a, _ := last.Feature("a")
	assert.Equal(t, drift.KS, a.Method)
	assert.Equal(t, drift.StatusDrift, a.Status)
	assert.Less(t, a.AdjustedP, 0.05)
	b, _ := last.Feature("b")
	assert.Equal(t, drift.StatusOK, b.Status)

	serve(t, p, g, 500, 50, 1) // the second: the alarm is raised
	flush(t, m)
	st := m.Status("linear", "1")
	assert.True(t, st.Alarmed)
	assert.Equal(t, []string{"a", "score"}, st.Features)
	err := st.Err()
	require.ErrorIs(t, err, drift.ErrDrift)
	assert.Contains(t, err.Error(), "a: ks p=")
	mu.Lock()
	require.Len(t, alerts, 1)
	assert.Equal(t, drift.AlertRaised, alerts[0].Kind)
	assert.Equal(t, []string{"a", "score"}, alerts[0].Raised)
	assert.Equal(t, int64(6), alerts[0].Result.Window.Index)
	mu.Unlock()

	serve(t, p, g, 1000, 50, 0) // two windows back to normal: still alarmed
	flush(t, m)
	st = m.Status("linear", "1")
	assert.True(t, st.Alarmed)
	assert.Contains(t, st.Reason, "alarm held")
	serve(t, p, g, 500, 50, 0) // the third clears it
	flush(t, m)
	assert.NoError(t, m.Status("linear", "1").Err())
	mu.Lock()
	require.Len(t, alerts, 2)
	assert.Equal(t, drift.AlertCleared, alerts[1].Kind)
	assert.Equal(t, []string{"a", "score"}, alerts[1].Cleared)
	mu.Unlock()
	assert.Equal(t, int64(9), m.Stats().Windows)
	assert.Equal(t, int64(2), m.Stats().Alerts)
}

func TestMiddlewareConformance(t *testing.T) {
	prof := referenceProfile(t, 1000)
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			return newMonitor(t, drift.WithProfile(prof)).Middleware()(servingtest.Linear(2))
		},
		Request:       func() *serving.Request { return request([]float32{1, 2, 3, 4}) },
		Deterministic: true,
	})
}

// The observer must copy what it keeps before Predict returns: a caller
// that overwrites its input right after must not change what is observed.
func TestObservesACopy(t *testing.T) {
	m := newMonitor(t, drift.WithProfile(referenceProfile(t, 1000)), drift.WithWindow(drift.CountWindow(1000, 0)))
	p := m.Middleware()(servingtest.Linear(2))
	x := []float32{0.25, 0.5, 0.75, 0.125}
	for range 10 {
		_, err := p.Predict(context.Background(), request(x))
		require.NoError(t, err)
		for i := range x {
			x[i] = 99 // reuse the buffer
		}
		x = []float32{0.25, 0.5, 0.75, 0.125}
	}
	snap, err := m.Snapshot(context.Background(), "linear", "1")
	require.NoError(t, err)
	a := snap.Features[0]
	assert.Equal(t, int64(20), a.N)
	assert.Equal(t, 0.25, a.Min)
	assert.Equal(t, 0.75, a.Max)
	assert.NotContains(t, a.Values, 99.0)
}

// A slow alert function blocks the worker; requests must not wait for it,
// and what cannot be queued is dropped and counted.
func TestNeverBlocksPredict(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	m := newMonitor(t,
		drift.WithProfile(referenceProfile(t, 1000)),
		drift.WithWindow(drift.CountWindow(100, 0)),
		drift.WithHysteresis(1, 1, 1),
		drift.WithMinSamples(10),
		drift.WithQueue(4),
		drift.WithAlertFunc(func(drift.Alert) { once.Do(func() { <-release }) }))
	p := m.Middleware()(servingtest.Linear(2))
	g := newGen(3)
	serve(t, p, g, 100, 100, 5) // one window of drift: the alert blocks the worker
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(t, p, g, 5000, 10, 5) // 500 requests into a queue of 4
	}()
	<-done // returns although the worker is stuck
	close(release)
	flush(t, m)
	s := m.Stats()
	assert.Positive(t, s.Dropped)
	assert.Equal(t, int64(501), s.Requests+s.Dropped)
}

func TestUnprofiledAndRejected(t *testing.T) {
	m := newMonitor(t, drift.WithProfile(referenceProfile(t, 1000)))
	p := m.Middleware()(servingtest.Linear(2))
	req := request([]float32{1, 2})
	req.Version = "2" // no profile for version 2
	_, err := p.Predict(context.Background(), req)
	require.NoError(t, err)
	// A request without the features' tensor is counted, not observed.
	stub := m.Middleware()(servingtest.Static())
	_, err = stub.Predict(context.Background(), &serving.Request{Model: "linear", Version: "1"})
	require.NoError(t, err)
	flush(t, m)
	s := m.Stats()
	assert.Equal(t, int64(1), s.Unprofiled)
	assert.Equal(t, int64(1), s.Rejected)
	assert.Zero(t, s.Requests)
}

func TestCloseIsIdempotent(t *testing.T) {
	m, err := drift.NewMonitor()
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	err = m.Flush(context.Background())
	assert.Equal(t, serving.Unavailable, serving.CodeOf(err))
	// The middleware still serves after the monitor is closed.
	p := m.Middleware()(servingtest.Linear(2))
	_, err = p.Predict(context.Background(), request([]float32{1, 2}))
	assert.NoError(t, err)
}

// A new profile for a version takes over at once; its windows start afresh
// but their numbers go on.
func TestAddProfileReplaces(t *testing.T) {
	first, second := referenceProfile(t, 1000), referenceProfile(t, 3000)
	m := newMonitor(t, drift.WithProfile(first), drift.WithWindow(drift.CountWindow(200, 0)))
	p := m.Middleware()(servingtest.Linear(2))
	g := newGen(13)
	serve(t, p, g, 300, 50, 0) // one window and a half
	flush(t, m)
	require.NoError(t, m.AddProfile(second))
	serve(t, p, g, 200, 50, 0)
	flush(t, m)
	res := m.Results("linear", "1")
	require.Equal(t, 2, len(res))
	assert.Equal(t, int64(2), res[0].Window.Index)
	assert.Equal(t, second.Fingerprint(), res[0].Profile)
	assert.Equal(t, first.Fingerprint(), res[1].Profile)
	got, _ := m.Profile("linear", "1")
	assert.Same(t, second, got)
}

// Above a router the request names no version; the answer does, and the
// monitor keys on it.
func TestKeysOnTheAnsweringVersion(t *testing.T) {
	prof := referenceProfile(t, 1000)
	m := newMonitor(t, drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(100, 0)), drift.WithMinSamples(10))
	router := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		pinned := req.Clone()
		pinned.Version = "1" // the router's choice
		return servingtest.Linear(2).Predict(ctx, pinned)
	})
	p := m.Middleware()(router)
	req := request(newGen(14).rows(100, 0))
	req.Version = ""
	_, err := p.Predict(context.Background(), req)
	require.NoError(t, err)
	flush(t, m)
	assert.Len(t, m.Results("linear", "1"), 1)
	assert.Zero(t, m.Stats().Unprofiled)
}

// The rule on serving.Middleware: the observing layer owns the model it
// wraps and closes it; the Monitor, shared with another chain, stays open
// and keeps observing that chain: with no profile for the fake model it
// counts the answer as unprofiled, which a closed Monitor would not.
func TestCloseClosesTheModelNotTheMonitor(t *testing.T) {
	m := newMonitor(t)
	servingtest.Ownership(t, m.Middleware(), func(t *testing.T, _ serving.Predictor) {
		assert.EqualValues(t, 1, m.Stats().Unprofiled, "answers observed after the first chain closed")
	})
}

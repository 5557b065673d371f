package remote_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// switchable serves linear until down is set, then answers everything 503.
func switchable(t *testing.T) (*server, *atomic.Bool) {
	t.Helper()
	h := httpapi.New()
	if err := h.Handle("linear", servingtest.Linear(4)); err != nil {
		t.Fatal(err)
	}
	g := grpcapi.New(h, grpcapi.WithFallback(h))
	var down atomic.Bool
	return serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error":"down for maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		g.ServeHTTP(w, r)
	})), &down
}

// TestReadinessProbe: Ready follows the server's model readiness with a
// probe, drops at once when a call ends Unavailable, and comes back.
func TestReadinessProbe(t *testing.T) {
	srv, down := switchable(t)
	plain := dial(t, srv.rest(), "linear")
	probed := dial(t, srv.rest(), "linear", remote.WithReadinessProbe(5*time.Millisecond))
	slow := dial(t, srv.rest(), "linear", remote.WithReadinessProbe(time.Hour))
	if !probed.Ready() || !slow.Ready() {
		t.Fatal("not ready after Dial")
	}
	down.Store(true)
	poll.Until(t, "the probe to see the model down", func() bool { return !probed.Ready() })
	if _, err := slow.Predict(context.Background(), servingtest.Rows(4, 1, 0)); serving.CodeOf(err) != serving.Unavailable {
		t.Fatalf("a call to a down server: %v", err)
	}
	if slow.Ready() {
		t.Error("Ready after a call ended Unavailable, before any probe")
	}
	if !plain.Ready() {
		t.Error("without a probe Ready reports only that the Predictor is open")
	}
	down.Store(false)
	poll.Until(t, "the probe to see the model ready again", probed.Ready)
	probed.Close()
	if probed.Ready() {
		t.Error("Ready after Close")
	}
}

// TestRouterRoutesAroundADownServer: a router holding a probed remote
// version and a local one at 50/50 sends every request to the local
// version once the remote server is down, and none fails.
func TestRouterRoutesAroundADownServer(t *testing.T) {
	srv, down := switchable(t)
	r, err := rollout.New("linear")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := remote.Dial(context.Background(), srv.grpc(), "linear", remote.WithReadinessProbe(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Put("remote", p); err != nil {
		t.Fatal(err)
	}
	if err := r.Put("local", servingtest.Linear(4)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWeights(map[string]float64{"remote": 50, "local": 50}); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	poll.Until(t, "the remote version to be seen down", func() bool { return !p.Ready() })
	for range 200 {
		resp, err := r.Predict(context.Background(), servingtest.Rows(4, 1, 0))
		if err != nil || resp.Version != "local" {
			t.Fatalf("with the remote server down: %v, %v", resp, err)
		}
	}
}

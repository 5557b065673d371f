package reliability_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/limit"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/telemetry"
)

// BenchmarkRefusal compares, through the example server's stack (HTTP
// handler, telemetry, limiter) on the heavy model's request, what a
// refusal costs (every slot taken, no queue: 429) with what an admitted
// request costs (the heavy model run). Their ratio is how many refusals
// one core can send in the time of one run: the headroom that lets a
// server at 10x its capacity keep serving at capacity.
func BenchmarkRefusal(b *testing.B) {
	orttest.Require(b)
	bytesOf, err := os.ReadFile(heavyModel(b))
	if err != nil {
		b.Fatal(err)
	}
	model, err := onnx.LoadBytes("heavy", bytesOf, onnx.WithIntraOpThreads(1))
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	body := heavyBody(1)
	stack := func(p serving.Predictor) (*httpapi.Handler, *limit.Limiter) {
		l, err := limit.New(p, limit.WithMaxInFlight(1), limit.WithMaxQueue(0))
		if err != nil {
			b.Fatal(err)
		}
		h := httpapi.New()
		if err := h.Handle("heavy", telemetry.Middleware()(l)); err != nil {
			b.Fatal(err)
		}
		return h, l
	}
	serve := func(b *testing.B, h http.Handler, want int) {
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v2/models/heavy/infer", bytes.NewReader(body)))
			if w.Code != want {
				b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
			}
		}
	}
	b.Run("admitted", func(b *testing.B) {
		h, l := stack(model)
		defer l.Close()
		serve(b, h, http.StatusOK)
	})
	b.Run("refused", func(b *testing.B) {
		// One request holds the only slot for the whole run.
		hold, release := make(chan struct{}), make(chan struct{})
		blocker := serving.PredictorFunc(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
			close(hold)
			<-release
			return model.Predict(ctx, req)
		})
		h, l := stack(blocker)
		defer l.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v2/models/heavy/infer", bytes.NewReader(body)))
		}()
		<-hold
		serve(b, h, http.StatusTooManyRequests)
		close(release)
		<-done
	})
}

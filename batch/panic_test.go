package batch_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// panicky panics in the runs it is told to, and otherwise is Linear(4).
type panicky struct {
	serving.Predictor
	panics atomic.Int32 // runs still to panic
}

func (p *panicky) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	if p.panics.Add(-1) >= 0 {
		panic("secret-state")
	}
	return p.Predictor.Predict(ctx, req)
}

func (p *panicky) Metadata() serving.Metadata {
	md, _ := serving.MetadataOf(p.Predictor)
	return md
}

// A model that panics, on each of the batcher's paths (a lone request's
// fast path under a ctx that can never end and one that can, a request of
// several rows on the locked path), gives its caller an Internal error
// without the panic value and logs it once with its stack; the batcher
// gives the run's slot back, so the next request is answered.
func TestModelPanicIsInternalAndFreesTheSlot(t *testing.T) {
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))

	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		rows int
	}{{"lone", context.Background(), 1}, {"lone-cancel", cctx, 1}, {"rows", context.Background(), 3}} {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			m := &panicky{Predictor: servingtest.Linear(4)}
			// One run at a time: a slot not given back would hold up the
			// next request.
			b := mustNew(t, m, batch.WithMaxInFlight(1))
			// Past the first lone requests, which gather company, and a
			// sampled one, which takes the locked path (warmFast).
			for i := 0; b.Stats().Untimed == 0 || batch.FastSampled(b); i++ {
				if _, err := b.Predict(c.ctx, servingtest.Rows(4, 1, 0)); err != nil || i == 1000 {
					t.Fatalf("warming up: %v, %+v", err, b.Stats())
				}
			}
			fast := b.Stats().Untimed
			m.panics.Store(1)
			_, err := b.Predict(c.ctx, servingtest.Rows(4, c.rows, 0))
			if serving.CodeOf(err) != serving.Internal || strings.Contains(err.Error(), "secret-state") {
				t.Fatalf("a panicking run: %v, want internal without the panic value", err)
			}
			if ran := b.Stats().Untimed - fast; (c.rows == 1) != (ran == 1) {
				t.Errorf("%d runs on the fast path, want %d", ran, map[bool]int{true: 1}[c.rows == 1])
			}
			if out := logs.String(); strings.Count(out, `"msg":"batch: model panicked"`) != 1 || !strings.Contains(out, "secret-state") || !strings.Contains(out, `"stack"`) {
				t.Errorf("log %q, want one entry with the panic and its stack", out)
			}
			for i := range 3 {
				resp, err := b.Predict(c.ctx, servingtest.Rows(4, c.rows, float32(i)))
				if err != nil {
					t.Fatalf("request %d after the panic: %v", i, err)
				}
				if got := resp.Outputs[0].Shape[0]; got != int64(c.rows) {
					t.Fatalf("request %d after the panic: %d rows, want %d", i, got, c.rows)
				}
			}
			if s := b.Stats(); s.QueuedReqs != 0 || s.InFlight != 0 || s.Ended != 0 {
				t.Errorf("after the panic: %d queued, %d in flight, %d runs ended at their limit; want none", s.QueuedReqs, s.InFlight, s.Ended)
			}
		})
	}
}

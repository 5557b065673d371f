package cache_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/poll"
	"github.com/servekit/servekit/internal/redistest"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/serving"
)

// A classifier exported with ZipMap and string labels, fed per-column
// inputs with a string column, is cached like any model behind a batcher:
// the answer a replica computed (a BYTES label, the FP32 [N, C] ZipMap
// tensor) comes back from its own L1 and from the shared Redis tier to
// another replica, each time equal to ONNX Runtime's own.
func TestTabularCachedAndBatched(t *testing.T) {
	for _, name := range []string{"loan_columns", "logreg_str_zipmap"} {
		t.Run(name, func(t *testing.T) {
			c := tabulartest.Find(t, name)
			orttest.Require(t)
			srv := redistest.Start(t)
			m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			replica := func() (*cache.Cache, serving.Predictor) {
				ca := newCache(t, cache.WithRedis(srv.Client(), signed, patient))
				p := serving.Chain(ca.Middleware(), batch.Middleware(batch.WithMaxBatchRows(64)))(m)
				t.Cleanup(func() { serving.Close(p) }) // the batcher, and the model
				return ca, p
			}
			ca, a := replica()
			cb, b := replica()
			check := func(p serving.Predictor) {
				t.Helper()
				resp, err := p.Predict(context.Background(), c.Request())
				if err != nil {
					t.Fatal(err)
				}
				tabulartest.CheckResponse(t, c.Path, c.Inputs, m.Metadata(), resp.Outputs)
			}
			check(a) // computed, through the batcher
			poll.Until(t, "the write-behind", func() bool { return ca.Stats().L2Writes == 1 })
			check(a) // L1
			check(b) // L2
			if s := ca.Stats(); s.Misses != 1 || s.HitsL1 != 1 {
				t.Errorf("replica A: %+v, want one miss then one L1 hit", s)
			}
			if s := cb.Stats(); s.HitsL2 != 1 || s.Misses != 0 {
				t.Errorf("replica B: %+v, want one L2 hit", s)
			}
		})
	}
}

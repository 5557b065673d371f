package batch_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/serving"
)

// Tabular models take one [N, 1] input per column, of mixed datatypes
// (skl2onnx's ColumnTransformer), or several 1-D inputs; ZipMap outputs are
// served as FP32 [N, C]. Requests to them join into one run on dimension 0
// of every input, whatever order each request lists its inputs in, and
// every caller gets exactly the answer ONNX Runtime gives its own rows.
func TestTabularJoinsPerColumnInputs(t *testing.T) {
	for _, name := range []string{"loan_columns", "onehot", "label_encoder", "logreg_str_zipmap", "category_mapper", "dtypes"} {
		t.Run(name, func(t *testing.T) {
			c := tabulartest.Find(t, name)
			orttest.Require(t)
			m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			rows := c.Rows()
			// Requests of 1, 2 and the remaining rows; a batch runs only
			// when all of them are queued (full, no delay to wait out).
			b, err := batch.New(m, batch.WithMaxBatchRows(int(rows)), batch.WithMaxDelay(time.Hour), batch.WithAdaptive(false))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cuts := []int64{0, 1, 3, rows}
			reqs := make([]*serving.Request, len(cuts)-1)
			for i := range reqs {
				req := c.Request()
				for k, in := range req.Inputs {
					req.Inputs[k], err = in.Rows(cuts[i], cuts[i+1])
					if err != nil {
						t.Fatal(err)
					}
				}
				if i%2 == 1 {
					slices.Reverse(req.Inputs) // the order inputs are named in does not matter
				}
				reqs[i] = req
			}
			resps := make([]*serving.Response, len(reqs))
			errs := make([]error, len(reqs))
			var wg sync.WaitGroup
			for i, req := range reqs {
				wg.Go(func() { resps[i], errs[i] = b.Predict(context.Background(), req) })
			}
			wg.Wait()
			for i, req := range reqs {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				tabulartest.CheckResponse(t, c.Path, req.Inputs, m.Metadata(), resps[i].Outputs)
			}
			if s := b.Stats(); s.Batches != 1 || s.Requests != int64(len(reqs)) || s.Rows != rows {
				t.Errorf("stats %+v: want the %d requests in one batch of %d rows", s, len(reqs), rows)
			}
		})
	}
}

package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The batcher reports what it measures through each caller's
// serving.Timing: the time each waited in the queue, the batch's compute
// time charged to every member (Triton charges a batch's compute to each
// request), and the batch's run counted once, by one member, with the
// batch's rows. A transport's statistics are built from these.
func TestTimingReportsQueueComputeAndOneExecution(t *testing.T) {
	lin := servingtest.Linear(1)
	md, _ := serving.MetadataOf(lin)
	const compute = 5 * time.Millisecond
	model := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		// What a backend does (backend/onnx): one execution per run.
		serving.TimingOf(ctx).Executed(serving.Execution{Rows: req.Rows(), ComputeInfer: compute})
		return lin.Predict(ctx, req)
	}).WithMetadata(md)
	clk := newFakeClock()
	const delay = 10 * time.Millisecond
	b := mustNew(t, model, batch.WithAdaptive(false), batch.WithMaxDelay(delay), batch.WithClock(clk))
	var ta, tc serving.Timing
	t0 := clk.Now()
	a := async(serving.WithTiming(context.Background(), &ta), b, servingtest.Rows(1, 1, 0))
	clk.waitTimer(t, t0.Add(delay))
	clk.Advance(6 * time.Millisecond)
	c := async(serving.WithTiming(context.Background(), &tc), b, servingtest.Rows(1, 1, 1))
	waitQueued(t, b, 2)
	clk.Advance(4 * time.Millisecond)
	for _, ch := range []<-chan answer{a, c} {
		if r := <-ch; r.err != nil {
			t.Fatal(r.err)
		}
	}
	va, vc := ta.Values(), tc.Values()
	if va.Queue != delay || vc.Queue != 4*time.Millisecond {
		t.Errorf("queue times %v and %v, want %v and %v", va.Queue, vc.Queue, delay, 4*time.Millisecond)
	}
	if va.ComputeInfer != compute || vc.ComputeInfer != compute {
		t.Errorf("compute charged %v and %v, want the batch's %v to each", va.ComputeInfer, vc.ComputeInfer, compute)
	}
	execs := append(va.Executions, vc.Executions...)
	if len(execs) != 1 || execs[0].Rows != 2 {
		t.Errorf("executions %+v, want the one run of 2 rows, reported once", execs)
	}
}

// A Batcher describes the batching it does, for the model configuration a
// transport serves (Triton's max_batch_size and dynamic_batching).
func TestMetadataSaysHowItBatches(t *testing.T) {
	b := mustNew(t, servingtest.Linear(1), batch.WithMaxBatchRows(32), batch.WithMaxDelay(3*time.Millisecond))
	md, ok := serving.MetadataOf(b)
	if !ok || md.MaxBatchRows != 32 || md.BatchDelay != 3*time.Millisecond || md.Name == "" || len(md.Inputs) == 0 {
		t.Errorf("metadata %+v, want the model's with MaxBatchRows 32 and BatchDelay 3ms", md)
	}
}

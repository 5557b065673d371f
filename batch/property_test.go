package batch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// multiIO is a batchable fake with two inputs and two outputs whose rows
// are independent: sum[i] = a[i] + b[i] (FP32 [-1,2] + INT64 [-1]),
// neg[i] = -b[i]; it answers only the outputs asked for, in that order.
func multiIO() *servingtest.Fake {
	md := serving.Metadata{Name: "multi",
		Inputs: []serving.TensorSpec{
			{Name: "a", DataType: serving.FP32, Shape: []int64{-1, 2}},
			{Name: "b", DataType: serving.Int64, Shape: []int64{-1}},
		},
		Outputs: []serving.TensorSpec{
			{Name: "sum", DataType: serving.FP32, Shape: []int64{-1, 2}},
			{Name: "neg", DataType: serving.Int64, Shape: []int64{-1}},
		}}
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if err := md.Validate(req); err != nil {
			return nil, err
		}
		at, _ := req.Input("a")
		bt, _ := req.Input("b")
		a, _ := serving.Values[float32](at)
		b, _ := serving.Values[int64](bt)
		sum, neg := make([]float32, len(a)), make([]int64, len(b))
		for i := range a {
			sum[i] = a[i] + float32(b[i/2])
		}
		for i := range b {
			neg[i] = -b[i]
		}
		st, _ := serving.NewTensor("sum", at.Shape, sum)
		nt, _ := serving.NewTensor("neg", bt.Shape, neg)
		want := req.Outputs
		if len(want) == 0 {
			want = []string{"sum", "neg"}
		}
		resp := &serving.Response{ID: req.ID, Model: req.Model}
		for _, w := range want {
			if w == "sum" {
				resp.Outputs = append(resp.Outputs, st)
			} else {
				resp.Outputs = append(resp.Outputs, nt)
			}
		}
		return resp, nil
	}).WithMetadata(md)
}

func multiRequest(rng *rand.Rand, rows int) *serving.Request {
	a := make([]float32, 2*rows)
	b := make([]int64, rows)
	for i := range a {
		a[i] = float32(rng.IntN(1000))
	}
	for i := range b {
		b[i] = rng.Int64N(1000)
	}
	at, _ := serving.NewTensor("a", []int64{int64(rows), 2}, a)
	bt, _ := serving.NewTensor("b", []int64{int64(rows)}, b)
	req := &serving.Request{Model: "multi", Inputs: []serving.Tensor{at, bt}}
	switch rng.IntN(4) {
	case 1:
		req.Inputs = []serving.Tensor{bt, at} // input order must not matter
	case 2:
		req.Outputs = []string{"neg"}
	case 3:
		req.Outputs = []string{"neg", "sum"}
	}
	if rng.IntN(3) == 0 {
		req.Params = serving.Params{serving.ParamPriority: int64(1 + rng.IntN(2))}
	}
	return req
}

func linearRequest(rng *rand.Rand, rows int) *serving.Request {
	req := servingtest.Rows(3, rows, float32(rng.IntN(1000)))
	if rng.IntN(3) == 0 {
		req.Params = serving.Params{serving.ParamPriority: int64(1 + rng.IntN(2))}
	}
	return req
}

// TestBatchedEqualsUnbatched: whatever the mix of sizes, concurrency,
// options and cancellations, every caller that gets an answer gets exactly
// what the model alone would have given it, and the others get a context
// error.
func TestBatchedEqualsUnbatched(t *testing.T) {
	models := []struct {
		name string
		new  func() *servingtest.Fake
		req  func(*rand.Rand, int) *serving.Request
	}{
		{"linear", func() *servingtest.Fake { return servingtest.Linear(3) }, linearRequest},
		{"multi", multiIO, multiRequest},
	}
	for _, m := range models {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("%s/seed%d", m.name, seed), func(t *testing.T) {
				t.Parallel()
				propertyRun(t, rand.New(rand.NewPCG(seed, 0xba7c4)), m.new, m.req)
			})
		}
	}
}

func propertyRun(t *testing.T, rng *rand.Rand, newModel func() *servingtest.Fake, newReq func(*rand.Rand, int) *serving.Request) {
	reference := newModel()
	maxRows := []int{1, 4, 16}[rng.IntN(3)]
	opts := []batch.Option{
		batch.WithMaxBatchRows(maxRows),
		batch.WithMaxDelay([]time.Duration{0, 50 * time.Microsecond, 500 * time.Microsecond}[rng.IntN(3)]),
		batch.WithAdaptive(rng.IntN(2) == 0),
		batch.WithMaxInFlight(1 + rng.IntN(3)),
		batch.WithMaxQueueRows(1 << 20), // overload has its own test
	}
	b := mustNew(t, newModel(), opts...)
	callers, calls := 1+rng.IntN(12), 5+rng.IntN(15)
	type job struct {
		req    *serving.Request
		cancel time.Duration // < 0: never
	}
	jobs := make([][]job, callers)
	for c := range jobs {
		for range calls {
			j := job{req: newReq(rng, 1+rng.IntN(2*maxRows+1)), cancel: -1}
			if rng.IntN(5) == 0 {
				j.cancel = time.Duration(rng.IntN(200)) * time.Microsecond
			}
			jobs[c] = append(jobs[c], j)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, canceled := 0, 0
	for c := range callers {
		wg.Go(func() {
			for _, j := range jobs[c] {
				ctx, cancel := context.WithCancel(context.Background())
				var timer *time.Timer
				if j.cancel >= 0 {
					timer = time.AfterFunc(j.cancel, cancel)
				}
				before := j.req.Clone()
				got, err := b.Predict(ctx, j.req)
				if timer != nil {
					timer.Stop()
				}
				cancel()
				if !reflect.DeepEqual(before, j.req) {
					t.Errorf("Predict modified the request")
				}
				if err != nil {
					if j.cancel < 0 || serving.CodeOf(err) != serving.Canceled {
						t.Errorf("%d-row request: %v", j.req.Rows(), err)
					}
					mu.Lock()
					canceled++
					mu.Unlock()
					continue
				}
				want, err := reference.Predict(context.Background(), j.req)
				if err != nil {
					t.Errorf("reference: %v", err)
					continue
				}
				if !reflect.DeepEqual(got.Outputs, want.Outputs) {
					t.Errorf("%d-row request: batched answer %v, unbatched %v", j.req.Rows(), got.Outputs, want.Outputs)
				}
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s := b.Stats()
	if s.QueuedRows != 0 || s.QueuedReqs != 0 {
		t.Errorf("after all callers returned: %d rows in %d requests still queued", s.QueuedRows, s.QueuedReqs)
	}
	t.Logf("%d callers × %d calls, %v: %d answered, %d cancelled; %d batches, %.1f rows/batch",
		callers, calls, maxRows, answered, canceled, s.Batches, s.MeanRows())
}

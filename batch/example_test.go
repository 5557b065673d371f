package batch_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func Example() {
	model := servingtest.Linear(2) // y = 2x + 1, batchable on dimension 0
	b, err := batch.New(model, batch.WithMaxBatchRows(32), batch.WithMaxDelay(2*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer serving.Close(b) // the batcher, then the model

	var wg sync.WaitGroup
	answers := make([][]float32, 4)
	for i := range answers {
		wg.Go(func() {
			resp, err := b.Predict(context.Background(), servingtest.Rows(2, 1, float32(10*i)))
			if err != nil {
				fmt.Println(err)
				return
			}
			y, _ := resp.Output("y")
			answers[i], _ = serving.Values[float32](y)
		})
	}
	wg.Wait()
	fmt.Println(answers)
	s := b.Stats()
	fmt.Println("rows:", s.Rows, "requests:", s.Requests)
	// Output:
	// [[1 3] [21 23] [41 43] [61 63]]
	// rows: 4 requests: 4
}

func ExampleMiddleware() {
	p := serving.Chain(batch.Middleware(batch.WithMaxBatchRows(4)))(servingtest.Linear(1))
	defer serving.Close(p)
	// 10 rows with a max of 4: run as 4 + 4 + 2 and joined again.
	resp, err := p.Predict(context.Background(), servingtest.Rows(1, 10, 0))
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := resp.Output("y")
	v, _ := serving.Values[float32](y)
	fmt.Println(y.Shape, v)
	// Output:
	// [10 1] [1 3 5 7 9 11 13 15 17 19]
}

package servekit_test

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
)

// The composition of the package doc and the README, on a fake model:
// telemetry outermost, then the cache, then the batcher, then the model.
func Example() {
	model := servingtest.Linear(2) // stands for onnx.Load: y = 2x + 1

	c, err := cache.New(cache.WithMaxEntries(100_000))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	p := serving.Chain(telemetry.Middleware(), c.Middleware(), batch.Middleware())(model)
	defer serving.Close(p)

	for range 2 {
		resp, err := p.Predict(context.Background(), servingtest.Rows(2, 1, 1))
		if err != nil {
			fmt.Println(err)
			return
		}
		y, _ := resp.Output("y")
		fmt.Println(y.Data())
	}
	fmt.Printf("model calls %d, cache hits %d\n", model.Calls(), c.Stats().HitsL1)
	// Output:
	// [3 5]
	// [3 5]
	// model calls 1, cache hits 1
}

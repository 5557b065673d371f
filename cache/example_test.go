package cache_test

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

func Example() {
	c, err := cache.New(cache.WithMaxEntries(10_000))
	if err != nil {
		panic(err)
	}
	defer c.Close()

	model := servingtest.Linear(2) // y = 2x + 1
	p := c.Middleware()(model)
	defer serving.Close(p)

	for _, id := range []string{"a", "b"} {
		req := servingtest.Rows(2, 1, 1)
		req.ID = id
		resp, err := p.Predict(context.Background(), req)
		if err != nil {
			panic(err)
		}
		y, _ := resp.Output("y")
		fmt.Println(resp.ID, y.Data())
	}
	st := c.Stats()
	fmt.Printf("model calls %d, hits %d, misses %d\n", model.Calls(), st.HitsL1, st.Misses)
	// Output:
	// a [3 5]
	// b [3 5]
	// model calls 1, hits 1, misses 1
}

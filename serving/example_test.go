package serving_test

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// trace is a middleware that prints when a request passes it.
func trace(name string) serving.Middleware {
	return func(next serving.Predictor) serving.Predictor {
		return serving.PredictorFunc(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
			fmt.Println("enter", name)
			defer fmt.Println("leave", name)
			return next.Predict(ctx, req)
		})
	}
}

func ExampleChain() {
	model := servingtest.Linear(2)
	p := serving.Chain(trace("outer"), trace("inner"))(model)

	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{1, 2})
	resp, err := p.Predict(context.Background(), &serving.Request{Model: "linear", Inputs: []serving.Tensor{x}})
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := resp.Output("y")
	v, _ := serving.Values[float32](y)
	fmt.Println(v)
	// Output:
	// enter outer
	// enter inner
	// leave inner
	// leave outer
	// [3 5]
}

func ExampleCodeOf() {
	_, err := serving.NewTensor("x", []int64{2, 2}, []float32{1, 2, 3})
	fmt.Println(serving.CodeOf(err))
	fmt.Println(err)
	// Output:
	// invalid_argument
	// serving: tensor "x": shape [2 2] holds 4 elements, data has 3
}

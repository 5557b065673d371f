package servingtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// Test code that calls a model, without the model: Linear stands in for it
// and a Recorder shows what reached it.
func ExampleRecorder() {
	rec := servingtest.NewRecorder(servingtest.Linear(2))

	resp, err := rec.Predict(context.Background(), servingtest.Rows(2, 1, 10))
	if err != nil {
		fmt.Println(err)
		return
	}
	y, _ := resp.Output("y")
	v, _ := serving.Values[float32](y)
	fmt.Println("answer:", v)
	fmt.Println("requests seen:", len(rec.Requests()), "rows:", rec.Requests()[0].Rows())
	// Output:
	// answer: [21 23]
	// requests seen: 1 rows: 1
}

// Failing makes error paths easy to reach: here, an overloaded model.
func ExampleFailing() {
	busy := serving.Errorf(serving.ResourceExhausted, "model busy: %w", serving.ErrOverloaded)
	p := servingtest.Failing(busy)

	_, err := p.Predict(context.Background(), servingtest.Rows(2, 1, 0))
	fmt.Println(serving.CodeOf(err), errors.Is(err, serving.ErrOverloaded))
	// Output:
	// resource_exhausted true
}

// InjectFaults breaks a share of requests on purpose, to test what sits
// above a model: here every request fails.
func ExampleInjectFaults() {
	p := servingtest.InjectFaults(servingtest.Linear(2), servingtest.Faults{Error: 1, Seed: 1})

	_, err := p.Predict(context.Background(), servingtest.Rows(2, 1, 0))
	fmt.Println(serving.CodeOf(err), p.Counts().Errors)
	// Output:
	// internal 1
}

package rollout_test

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A challenger sees every request the primary answers, and the two are
// compared; callers only ever see the primary's answers.
func ExampleShadow() {
	primary := servingtest.Linear(2) // y = 2x + 1
	// The challenger agrees with it, except that it answers 2x + 2 for x ≥ 6.
	challenger := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		resp, err := servingtest.Linear(2).Predict(ctx, req)
		if err != nil {
			return nil, err
		}
		in, _ := req.Input("x")
		x, _ := serving.Values[float32](in)
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = 2*v + 1
			if v >= 6 {
				y[i]++
			}
		}
		out, _ := serving.NewTensor("y", in.Shape, y)
		resp.Outputs = []serving.Tensor{out}
		return resp, nil
	})

	s, err := rollout.NewShadow(challenger,
		rollout.WithChallengerVersion("2"),
		rollout.WithMaxMirrors(8),
		rollout.WithComparison("y", rollout.Tolerance(0.01, 0)))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := s.Middleware()(primary)
	for _, first := range []float32{0, 2, 4, 6} {
		resp, _ := p.Predict(context.Background(), servingtest.Rows(2, 1, first))
		y, _ := resp.Output("y")
		v, _ := serving.Values[float32](y)
		fmt.Println("answer:", v)
	}
	s.Close() // waits for the mirrors in flight

	snap := s.Snapshot()
	y, _ := snap.Output("y")
	fmt.Printf("challenger %s: %d pairs, %d of %d elements agree (%.2f), max |diff| %.1f, mean %.2f\n",
		snap.Challenger, snap.Pairs, y.Agreed, y.Decisions, y.Agreement, y.MaxAbsDiff, y.MeanAbsDiff)
	// Output:
	// answer: [1 3]
	// answer: [5 7]
	// answer: [9 11]
	// answer: [13 15]
	// challenger 2: 4 pairs, 6 of 8 elements agree (0.75), max |diff| 1.0, mean 0.25
}

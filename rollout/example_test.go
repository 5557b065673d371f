package rollout_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rollout/rollouttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// A canary: version 2 takes 10 % of the users. The assignment is sticky: a
// user stays on the version their key hashes to, and raising the canary's
// weight only moves users onto it.
func ExampleRouter_SetWeights() {
	r, err := rollout.New("fraud")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	r.Put("1", servingtest.Linear(2)) // the first version takes 100 %
	r.Put("2", servingtest.Linear(2)) // later ones join at 0 %
	if err := r.SetWeights(map[string]float64{"1": 90, "2": 10}); err != nil {
		fmt.Println(err)
		return
	}

	onCanary := func() (n int) {
		for i := range 10_000 {
			req := servingtest.Rows(2, 1, 0)
			req.Key = "user-" + strconv.Itoa(i)
			resp, _ := r.Predict(context.Background(), req)
			if resp.Version == "2" {
				n++
			}
		}
		return n
	}
	fmt.Println("users on the canary at 10 %:", onCanary())
	r.SetWeights(map[string]float64{"1": 75, "2": 25})
	fmt.Println("users on the canary at 25 %:", onCanary())
	// Output:
	// users on the canary at 10 %: 1019
	// users on the canary at 25 %: 2469
}

// Blue-green: switch all traffic to the new version at once, and back.
func ExampleRouter_Switch() {
	r, err := rollout.New("fraud")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	r.Put("blue", servingtest.Linear(2))
	r.Put("green", servingtest.Linear(2))

	answer := func() string {
		resp, err := r.Predict(context.Background(), servingtest.Rows(2, 1, 0))
		if err != nil {
			return err.Error()
		}
		return resp.Version
	}
	fmt.Println("before:", answer())
	r.Switch("green")
	fmt.Println("switched:", answer())
	r.Rollback()
	fmt.Println("rolled back:", answer())
	// Output:
	// before: blue
	// switched: green
	// rolled back: blue
}

// A staged plan with guards. Version 2 starts failing at its second step;
// the error-rate guard rolls the plan back and records why. The clock is
// stepped by hand, as in a test.
func ExampleRouter_Start() {
	clock := rollouttest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	logs := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := rollout.New("fraud", rollout.WithClock(clock), rollout.WithLogger(logs))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	broken := false
	r.Put("1", servingtest.Linear(2))
	r.Put("2", servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		if broken {
			return nil, serving.Errorf(serving.Internal, "model bug")
		}
		return &serving.Response{}, nil
	}))
	err = r.Start(rollout.Plan{
		Canary:   "2",
		Steps:    []rollout.Step{{Weight: 5, Hold: time.Minute}, {Weight: 25, Hold: time.Minute}, {Weight: 50, Hold: time.Minute}},
		Guards:   []rollout.Guard{rollout.MinRequests(20), rollout.MaxErrorRate(0.01)},
		Interval: 30 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	traffic := func() {
		for i := range 1000 {
			r.Predict(context.Background(), &serving.Request{Key: "user-" + strconv.Itoa(i)})
		}
	}
	show := func() {
		p := r.Status().Plan
		fmt.Printf("%s: %s, step %d, canary %v%%\n", clock.Now().Format("15:04:05"), p.State, p.Step, p.Weight)
	}

	traffic()
	clock.Advance(time.Minute) // the guards hold for a minute: next step
	show()
	broken = true
	traffic()
	clock.Advance(30 * time.Second)
	show()
	fmt.Println("reason:", r.Status().Plan.Reason)
	fmt.Println("weights:", r.Weights())
	// Output:
	// 12:01:00: running, step 1, canary 25%
	// 12:01:30: rolled_back, step 1, canary 0%
	// reason: canary "2" error rate 100.00% (243 of 243) > 1.00%
	// weights: map[1:100]
}

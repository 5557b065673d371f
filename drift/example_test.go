package drift_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// exampleRequest is a request to servingtest.Linear(2) of rows rows whose
// first column is shifted by shift.
func exampleRequest(r *rand.Rand, rows int, shift float64) *serving.Request {
	x := make([]float32, 2*rows)
	for i := range rows {
		x[2*i] = float32(r.NormFloat64() + shift)
		x[2*i+1] = float32(r.Float64())
	}
	t, _ := serving.NewTensor("x", []int64{int64(rows), 2}, x)
	return &serving.Request{Model: "linear", Version: "1", Inputs: []serving.Tensor{t}}
}

// A monitor in front of a model: traffic like the reference raises
// nothing; shifted traffic raises the alarm after two windows, and the
// alert reaches the alert function.
func ExampleMonitor() {
	r := rand.New(rand.NewPCG(1, 2))
	model := servingtest.Linear(2)
	features := []drift.Feature{
		drift.NumericalFeature("amount", drift.InputColumn("x", 0)),
		drift.NumericalFeature("ratio", drift.InputColumn("x", 1)),
		drift.NumericalFeature("score", drift.OutputColumn("y", 0)),
	}

	// The reference: "training" traffic through the model.
	b, _ := drift.NewProfileBuilder("linear", "1", features)
	for range 50 {
		req := exampleRequest(r, 100, 0)
		resp, _ := model.Predict(context.Background(), req)
		b.AddRequest(req, resp)
	}
	prof, _ := b.Profile()

	mon, _ := drift.NewMonitor(drift.WithProfile(prof),
		drift.WithWindow(drift.CountWindow(500, 0)),
		drift.WithAlertFunc(func(a drift.Alert) {
			fmt.Printf("alert %s after window %d: %v\n", a.Kind, a.Result.Window.Index, a.Raised)
		}))
	defer mon.Close()
	p := mon.Middleware()(model)

	serve := func(rows int, shift float64) {
		for range rows / 100 {
			p.Predict(context.Background(), exampleRequest(r, 100, shift))
		}
		mon.Flush(context.Background())
	}
	serve(1000, 0)
	fmt.Println("alarmed:", mon.Status("linear", "1").Alarmed)
	serve(1000, 0.5)
	st := mon.Status("linear", "1")
	fmt.Println("alarmed:", st.Alarmed, st.Features)
	// Output:
	// alarmed: false
	// alert raised after window 4: [amount score]
	// alarmed: true [amount score]
}

// A profile from a CSV file of training rows, as it ships beside the model
// version.
func ExampleProfileBuilder_ReadCSV() {
	csv := "amount,channel\n12.5,web\n3.2,app\n40,web\n7.5,pos\n19.9,web\n"
	b, _ := drift.NewProfileBuilder("fraud", "1", []drift.Feature{
		drift.NumericalFeature("amount", drift.InputColumn("features", 0)),
		drift.CategoricalFeature("channel", drift.Input("channel")),
	})
	if err := b.ReadCSV(strings.NewReader(csv)); err != nil {
		fmt.Println(err)
		return
	}
	p, _ := b.Profile()
	amount, _ := p.Feature("amount")
	channel, _ := p.Feature("channel")
	fmt.Println("amount:", amount.Count, "values, from", amount.Min, "to", amount.Max)
	fmt.Println("channel:", channel.Categories, channel.Counts)
	// Output:
	// amount: 5 values, from 3.2 to 40
	// channel: [web app pos] [3 1 1 0]
}

// A rollout guard asks the monitor before promoting a version; Status.Err
// is nil until the version's drift alarm is raised, then it says why.
func ExampleStatus_Err() {
	r := rand.New(rand.NewPCG(5, 6))
	b, _ := drift.NewProfileBuilder("linear", "2", []drift.Feature{drift.NumericalFeature("amount", drift.InputColumn("x", 0))})
	for range 2000 {
		b.Add("amount", r.NormFloat64())
	}
	prof, _ := b.Profile()
	mon, _ := drift.NewMonitor(drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(500, 0)),
		drift.WithHysteresis(1, 1, 1))
	defer mon.Close()
	p := mon.Middleware()(servingtest.Linear(2))

	// What a rollout plan's guard runs (rollout.GuardFunc wraps it).
	guard := func(context.Context) error { return mon.Status("linear", "2").Err() }

	fmt.Println("before:", guard(context.Background()))
	for range 5 {
		req := exampleRequest(r, 100, 1)
		req.Version = "2"
		p.Predict(context.Background(), req)
	}
	mon.Flush(context.Background())
	err := guard(context.Background())
	fmt.Println("after:", errors.Is(err, drift.ErrDrift), strings.SplitN(err.Error(), " p=", 2)[0])
	// Output:
	// before: <nil>
	// after: true drift: alarm raised for "linear" version "2": amount: ks
}

// Replicas export their windows; a central process merges them and gets
// the statistics of all the traffic.
func ExampleMergeSnapshots() {
	r := rand.New(rand.NewPCG(3, 4))
	b, _ := drift.NewProfileBuilder("linear", "1", []drift.Feature{drift.NumericalFeature("amount", drift.InputColumn("x", 0))})
	for range 2000 {
		b.Add("amount", r.NormFloat64())
	}
	prof, _ := b.Profile()

	var snaps []*drift.Snapshot
	for range 3 { // three replicas
		mon, _ := drift.NewMonitor(drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(10000, 0)))
		p := mon.Middleware()(servingtest.Linear(2))
		for range 4 {
			p.Predict(context.Background(), exampleRequest(r, 100, 0.5))
		}
		s, _ := mon.Snapshot(context.Background(), "linear", "1")
		snaps = append(snaps, s) // in production: sent as JSON
		mon.Close()
	}
	all, _ := drift.MergeSnapshots(snaps...)
	res, _ := drift.Evaluate(prof, all)
	f := res.Features[0]
	fmt.Println("rows:", all.Rows, "method:", f.Method, "drifted:", f.Drifted)
	// Output:
	// rows: 1200 method: wasserstein drifted: true
}

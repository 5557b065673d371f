package drift_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// loanMetadata is a skl2onnx ColumnTransformer pipeline's metadata: one
// [N, 1] input per DataFrame column, a string label and ZipMap
// probabilities served as [N, 2].
var loanMetadata = serving.Metadata{
	Name: "loan", Version: "1",
	Inputs: []serving.TensorSpec{
		{Name: "age", DataType: serving.FP32, Shape: []int64{-1, 1}},
		{Name: "income", DataType: serving.FP32, Shape: []int64{-1, 1}},
		{Name: "n_loans", DataType: serving.Int64, Shape: []int64{-1, 1}},
		{Name: "purpose", DataType: serving.Bytes, Shape: []int64{-1, 1}},
		{Name: "history", DataType: serving.FP32, Shape: []int64{-1, 3}},
		{Name: "photo", DataType: serving.Uint8, Shape: []int64{-1, 64, 64}},
	},
	Outputs: []serving.TensorSpec{
		{Name: "output_label", DataType: serving.Bytes, Shape: []int64{-1}},
		{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"high", "low"}},
	},
}

func TestFeaturesOf(t *testing.T) {
	var got []string
	for _, f := range drift.FeaturesOf(loanMetadata) {
		got = append(got, f.Name+" "+string(f.Kind)+" "+f.Source.String())
	}
	assert.Equal(t, []string{
		`age numerical input "age" column 0`,
		`income numerical input "income" column 0`,
		`n_loans numerical input "n_loans" column 0`,
		`purpose categorical input "purpose" column 0`,
		`history_0 numerical input "history" column 0`,
		`history_1 numerical input "history" column 1`,
		`history_2 numerical input "history" column 2`,
		`output_label categorical output "output_label" column 0`,
	}, got)
}

// loanModel answers "high" for car loans, "low" otherwise.
func loanModel() serving.Predictor {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		p, _ := req.Input("purpose")
		purposes, _ := p.Strings()
		labels := make([]string, len(purposes))
		probs := make([]float32, 2*len(purposes))
		for i, s := range purposes {
			labels[i], probs[2*i], probs[2*i+1] = "low", 0.2, 0.8
			if s == "car" {
				labels[i], probs[2*i], probs[2*i+1] = "high", 0.7, 0.3
			}
		}
		l, _ := serving.NewStrings("output_label", []int64{int64(len(labels))}, labels)
		pr, _ := serving.NewTensor("output_probability", []int64{int64(len(labels)), 2}, probs)
		return &serving.Response{Model: "loan", Version: "1", Outputs: []serving.Tensor{l, pr}}, nil
	}).WithMetadata(loanMetadata)
}

// loanRequest is n applicants; carShare of them borrow for a car.
func loanRequest(r *rand.Rand, n int, carShare float64) *serving.Request {
	age, income := make([]float32, n), make([]float32, n)
	loans, purpose := make([]int64, n), make([]string, n)
	for i := range n {
		age[i] = float32(25 + 40*r.Float64())
		income[i] = float32(20000 + 60000*r.Float64())
		loans[i] = int64(r.IntN(4))
		purpose[i] = []string{"home", "education", "business"}[r.IntN(3)]
		if r.Float64() < carShare {
			purpose[i] = "car"
		}
	}
	col := func(name string, v []float32) serving.Tensor {
		t, _ := serving.NewTensor(name, []int64{int64(n), 1}, v)
		return t
	}
	nl, _ := serving.NewTensor("n_loans", []int64{int64(n), 1}, loans)
	pu, _ := serving.NewStrings("purpose", []int64{int64(n), 1}, purpose)
	return &serving.Request{Model: "loan", Version: "1", Inputs: []serving.Tensor{col("age", age), col("income", income), nl, pu}}
}

// A STRING column is watched as categorical: a shift in the share of one
// category (more car loans, every number unchanged) raises drift on that
// column and on the predicted label it drives, by chi-square, and on
// nothing else.
func TestStringColumnDriftsAsCategorical(t *testing.T) {
	md := loanMetadata
	md.Inputs = md.Inputs[:4] // the model of loanModel
	features := drift.FeaturesOf(md)
	r := rand.New(rand.NewPCG(7, 8))
	model := loanModel()
	b, err := drift.NewProfileBuilder("loan", "1", features)
	require.NoError(t, err)
	for range 20 {
		req := loanRequest(r, 100, 0.1)
		resp, err := model.Predict(context.Background(), req)
		require.NoError(t, err)
		require.NoError(t, b.AddRequest(req, resp))
	}
	prof, err := b.Profile()
	require.NoError(t, err)
	pf, _ := prof.Feature("purpose")
	assert.ElementsMatch(t, []string{"business", "car", "education", "home"}, pf.Categories)

	m := newMonitor(t, drift.WithProfile(prof), drift.WithWindow(drift.CountWindow(500, 0)))
	p := m.Middleware()(model)
	send := func(carShare float64) {
		for range 5 {
			_, err := p.Predict(context.Background(), loanRequest(r, 100, carShare))
			require.NoError(t, err)
		}
		flush(t, m)
	}
	send(0.1)
	assert.Empty(t, m.Results("loan", "1")[0].Drifted, "traffic like the reference")
	send(0.5)
	last := m.Results("loan", "1")[0]
	assert.Equal(t, []string{"purpose", "output_label"}, last.Drifted)
	pr, _ := last.Feature("purpose")
	assert.Equal(t, drift.ChiSquare, pr.Method)
	send(0.5) // the second window in a row raises the alarm
	st := m.Status("loan", "1")
	assert.Equal(t, []string{"purpose", "output_label"}, st.Features)
	assert.True(t, strings.Contains(st.Reason, "purpose: chi_square"), st.Reason)
}

// The features of a scikit-learn pipeline exported by skl2onnx from a
// DataFrame: a feature per column, the STRING one categorical, and the
// predicted label.
func ExampleFeaturesOf() {
	md := serving.Metadata{
		Inputs: []serving.TensorSpec{
			{Name: "income", DataType: serving.FP32, Shape: []int64{-1, 1}},
			{Name: "purpose", DataType: serving.Bytes, Shape: []int64{-1, 1}},
		},
		Outputs: []serving.TensorSpec{
			{Name: "output_label", DataType: serving.Bytes, Shape: []int64{-1}},
			{Name: "output_probability", DataType: serving.FP32, Shape: []int64{-1, 2}, Labels: []string{"high", "low"}},
		},
	}
	for _, f := range drift.FeaturesOf(md) {
		fmt.Println(f.Name, f.Kind)
	}
	// Output:
	// income numerical
	// purpose categorical
	// output_label categorical
}

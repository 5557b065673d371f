package scoring_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/beam/internal/beamtest"
	"github.com/servekit/servekit/beam/scoring"
	"github.com/servekit/servekit/internal/orttest"
)

// fraudRows returns n rows of 8 standardised features, seeded.
func fraudRows(n int) []scoring.Row {
	rng := rand.New(rand.NewPCG(11, 4))
	rows := make([]scoring.Row, n)
	for i := range rows {
		x := make([]float64, 8)
		for j := range x {
			x[j] = float64(float32(rng.NormFloat64()))
		}
		x[6], x[7] = float64(rng.IntN(2)), float64(rng.IntN(2))
		rows[i] = scoring.Row{Key: fmt.Sprintf("txn-%05d", i), Inputs: map[string][]float64{"features": x}}
	}
	return rows
}

// TestScoreFraudONNX runs the pipeline on prism with the real model and
// ONNX Runtime, and checks each row against the model asked directly,
// row by row.
func TestScoreFraudONNX(t *testing.T) {
	orttest.Require(t)
	path := beamtest.FraudModel(t)
	ref, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()

	rows := fraudRows(3000)
	rows[17].Inputs["features"] = rows[17].Inputs["features"][:7]
	rows[2999].Inputs = map[string][]float64{"": rows[2999].Inputs["features"]} // the single input under ""
	k, err := run(t, rows, scoring.Model{Path: path, Version: "7"}, scoring.WithMaxBatchRows(128))
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, rows, k)
	if len(k.failures) != 1 || k.failures[0].Row.Key != "txn-00017" || k.failures[0].Code != "invalid_argument" {
		t.Errorf("failures %+v, want only txn-00017 (7 features) as invalid_argument", k.failures)
	}
	byKey := map[string]scoring.Row{}
	for _, r := range rows {
		byKey[r.Key] = r
	}
	for _, r := range k.results {
		row := byKey[r.Key]
		x := row.Inputs["features"]
		if x == nil {
			x = row.Inputs[""]
		}
		f := make([]float32, len(x))
		for i, v := range x {
			f[i] = float32(v)
		}
		want := beamtest.FraudAlone(t, ref, f)
		got := r.Outputs["score"]
		if len(got) != 1 || got[0] != want || r.Model != "fraud" || r.Version != "7" {
			t.Fatalf("row %s: %s v%s score %v, want fraud v7 [%v] as Predict gives it alone", r.Key, r.Model, r.Version, got, want)
		}
	}
}

package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// applications are loan applications in columns, as the DataFrame the
// model was trained on holds them.
type applications struct {
	id      []string
	age     []float32 // NaN when the applicant left it blank
	income  []float32 // NaN likewise
	nLoans  []int64
	purpose []string
}

// mix is the share of each purpose among applications.
type mix map[string]float64

// usual is the mix of the training data; carBoom is a dealer's promotion
// sending car loans through the roof.
var (
	usual   = mix{"home": 0.40, "business": 0.25, "education": 0.20, "car": 0.15}
	carBoom = mix{"home": 0.15, "business": 0.10, "education": 0.10, "car": 0.65}
)

// purposes in a fixed order, so a seeded run draws the same applications.
var purposes = []string{"home", "business", "education", "car"}

// generate draws n applications with the given purpose mix; ids start at
// first so that batches of one run do not repeat them.
func generate(r *rand.Rand, n, first int, m mix) applications {
	a := applications{}
	for i := range n {
		age := float32(math.Round(25 + 40*r.Float64()))
		income := float32(math.Round(15000 + 70000*r.Float64()*r.Float64()))
		if r.IntN(50) == 0 {
			age = float32(math.NaN())
		}
		if r.IntN(40) == 0 {
			income = float32(math.NaN())
		}
		p, u := purposes[len(purposes)-1], r.Float64()
		for _, name := range purposes {
			if u < m[name] {
				p = name
				break
			}
			u -= m[name]
		}
		a.id = append(a.id, fmt.Sprintf("app-%06d", first+i))
		a.age = append(a.age, age)
		a.income = append(a.income, income)
		a.nLoans = append(a.nLoans, int64(r.IntN(5)))
		a.purpose = append(a.purpose, p)
	}
	return a
}

// request is the applications as the model's per-column inputs, each
// [rows, 1], as skl2onnx exports a pipeline fed by a DataFrame.
func (a applications) request() *serving.Request {
	n := int64(len(a.id))
	age, _ := serving.NewTensor("age", []int64{n, 1}, a.age)
	income, _ := serving.NewTensor("income", []int64{n, 1}, a.income)
	loans, _ := serving.NewTensor("n_loans", []int64{n, 1}, a.nLoans)
	purpose, _ := serving.NewStrings("purpose", []int64{n, 1}, a.purpose)
	return &serving.Request{Model: "loanrisk", Inputs: []serving.Tensor{age, income, loans, purpose}}
}

// write stores the applications as a file of one column per model input
// and the id, the layout the batch job's default schema reads.
func (a applications) write(path string) error {
	format, err := rowio.FormatOf(path)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := rowio.NewWriter(format, f)
	if err != nil {
		return err
	}
	bytes := func(s []string) [][]byte {
		b := make([][]byte, len(s))
		for i := range s {
			b[i] = []byte(s[i])
		}
		return b
	}
	fr := &rowio.Frame{Rows: len(a.id), Cols: []rowio.Col{
		{Field: rowio.Field{Name: "id", Type: serving.Bytes}, Data: bytes(a.id)},
		{Field: rowio.Field{Name: "age", Type: serving.FP32}, Data: a.age},
		{Field: rowio.Field{Name: "income", Type: serving.FP32}, Data: a.income},
		{Field: rowio.Field{Name: "n_loans", Type: serving.Int64}, Data: a.nLoans},
		{Field: rowio.Field{Name: "purpose", Type: serving.Bytes}, Data: bytes(a.purpose)},
	}}
	if err := w.Write(fr); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return f.Close()
}

package main

import (
	"bufio"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// generate writes n transactions for the demo fraud model to path (its
// extension picks the format): an INT64 key "id" and the 8 scaled
// features of onnxbuild.FraudFeatures, drawn from a fixed seed, so the
// same n gives the same file. It writes through rowio in blocks of 8192
// rows, so memory stays flat however large n is, and atomically, so an
// interrupted generation leaves no half file.
func generate(path string, n int64) error {
	format, err := rowio.FormatOf(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	a, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer a.Abort()
	bw := bufio.NewWriterSize(a, 1<<20)
	w, err := rowio.NewWriter(format, bw)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2024, uint64(n)))
	const block = 8192
	k := len(onnxbuild.FraudFeatures)
	ids := make([]int64, block)
	cols := make([][]float32, k)
	for i := range cols {
		cols[i] = make([]float32, block)
	}
	for lo := int64(0); lo < n; lo += block {
		m := int(min(block, n-lo))
		for r := range m {
			ids[r] = lo + int64(r)
			tx(rng, cols, r)
		}
		f := &rowio.Frame{Rows: m, Cols: []rowio.Col{{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids[:m]}}}
		for i, name := range onnxbuild.FraudFeatures {
			f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: name, Type: serving.FP32}, Data: cols[i][:m]})
		}
		if err := w.Write(f); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return a.Commit()
}

// tx draws one transaction's features, scaled as FraudFeatures says.
func tx(rng *rand.Rand, cols [][]float32, r int) {
	bit := func(p float64) float32 {
		if rng.Float64() < p {
			return 1
		}
		return 0
	}
	cols[0][r] = float32(rng.NormFloat64())                 // amount
	cols[1][r] = float32(math.Floor(rng.Float64()*24) / 23) // hour
	cols[2][r] = float32(rng.Float64())                     // merchant_risk
	cols[3][r] = float32(rng.NormFloat64())                 // distance_from_home
	cols[4][r] = float32(rng.NormFloat64())                 // txn_count_24h
	cols[5][r] = float32(rng.NormFloat64())                 // account_age
	cols[6][r] = bit(0.7)                                   // card_present
	cols[7][r] = bit(0.1)                                   // foreign
}

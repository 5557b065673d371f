package job_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// benchRows is the dataset of each benchmark op; benchBatch the rows per
// Predict call, the same for the job and for raw ONNX Runtime.
const benchRows, benchBatch = 1 << 18, 1024

// fraudInput writes benchRows rows of the demo fraud model's 8 features
// (plus an INT64 id) to a file in format, once per benchmark.
func fraudInput(b *testing.B, format rowio.Format) (string, [][]float32) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tx"+format.Ext())
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, _ := rowio.NewWriter(format, f)
	k := len(onnxbuild.FraudFeatures)
	var batches [][]float32
	for lo := 0; lo < benchRows; lo += benchBatch {
		ids, x := make([]int64, benchBatch), make([]float32, benchBatch*k)
		fr := &rowio.Frame{Rows: benchBatch, Cols: []rowio.Col{{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids}}}
		cols := make([][]float32, k)
		for c := range k {
			cols[c] = make([]float32, benchBatch)
		}
		for r := range benchBatch {
			ids[r] = int64(lo + r)
			for c := range k {
				v := float32((lo+r)*(c+1)%97) / 97
				cols[c][r], x[r*k+c] = v, v
			}
		}
		for c, name := range onnxbuild.FraudFeatures {
			fr.Cols = append(fr.Cols, rowio.Col{Field: rowio.Field{Name: name, Type: serving.FP32}, Data: cols[c]})
		}
		if err := w.Write(fr); err != nil {
			b.Fatal(err)
		}
		batches = append(batches, x)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path, batches
}

// BenchmarkThroughput compares, in one run, a whole job over the demo
// fraud MLP (read Parquet, score, write Parquet parts with fsync and a
// manifest) with ONNX Runtime alone running the same rows as pre-formed
// [1024, 8] batches with preallocated tensors, on as many goroutines as
// the job has workers. rows/s of job ÷ rows/s of raw-ort is the job's
// efficiency; the package doc has the figures.
func BenchmarkThroughput(b *testing.B) {
	orttest.Require(b)
	workers := runtime.GOMAXPROCS(0)
	path, batches := fraudInput(b, rowio.Parquet)
	fraudPath := filepath.Join(b.TempDir(), "fraud.onnx")
	bs, err := onnxbuild.FraudMLP()
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(fraudPath, bs, 0o644)

	b.Run("raw-ort", func(b *testing.B) {
		so, err := ort.NewSessionOptions()
		if err != nil {
			b.Fatal(err)
		}
		defer so.Destroy()
		so.SetIntraOpNumThreads(1)
		so.SetInterOpNumThreads(1)
		s, err := ort.NewDynamicAdvancedSession(fraudPath, []string{"features"}, []string{"score"}, so)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Destroy()
		for b.Loop() {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					out, _ := ort.NewEmptyTensor[float32](ort.NewShape(benchBatch, 1))
					defer out.Destroy()
					for i := w; i < len(batches); i += workers {
						in, err := ort.NewTensor(ort.NewShape(benchBatch, 8), batches[i])
						if err != nil {
							b.Error(err)
							return
						}
						if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
							b.Error(err)
						}
						in.Destroy()
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	for _, out := range []rowio.Format{rowio.Parquet, rowio.JSONL} {
		b.Run("job-parquet-to-"+out.String(), func(b *testing.B) {
			m := orttest.Fraud(b, onnx.WithIntraOpThreads(1))
			schema := rowio.Schema{Inputs: []rowio.Input{{Name: "features", Columns: onnxbuild.FraudFeatures}},
				Keys: []rowio.Field{{Name: "id", Type: serving.Int64}}}
			dir := b.TempDir()
			i := 0
			for b.Loop() {
				i++
				s, err := job.Run(context.Background(), m, path, filepath.Join(dir, fmt.Sprint(i)), job.WithSchema(schema),
					job.WithBatchRows(benchBatch), job.WithWorkers(workers), job.WithOutputFormat(out))
				if err != nil || s.Rows != benchRows {
					b.Fatalf("%v, %+v", err, s)
				}
			}
			b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

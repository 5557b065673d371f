package job_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// benchModel is a model to run a job with and the shape of its rows.
type benchModel struct {
	onnx        []byte
	in, out     string
	width, outW int
	rows, batch int
	columns     []string // input as scalar columns; nil: one vector column named in
}

// BenchmarkThroughput compares a whole job over the demo fraud MLP (read
// Parquet, score, write Parquet or JSONL parts with fsync and a manifest)
// with ONNX Runtime alone running the same rows as pre-formed [1024, 8]
// batches with preallocated tensors, on as many goroutines as the job has
// workers. job/raw is the job's efficiency; the package doc has the
// figures.
func BenchmarkThroughput(b *testing.B) {
	fraud, err := onnxbuild.FraudMLP()
	if err != nil {
		b.Fatal(err)
	}
	throughput(b, benchModel{onnx: fraud, in: "features", out: "score", width: 8, outW: 1, rows: 1 << 18, batch: 1024,
		columns: onnxbuild.FraudFeatures}, rowio.Parquet, rowio.JSONL)
}

// BenchmarkThroughputWide is the same for the 256→1024→1024→10 MLP the
// batch package benchmarks (about 140 µs a row), its input one vector
// column: a model whose rows cost what the I/O around them does not.
func BenchmarkThroughputWide(b *testing.B) {
	wide, err := onnxbuild.RandomMLP("wide", []int{256, 1024, 1024, 10}, "softmax", 7)
	if err != nil {
		b.Fatal(err)
	}
	throughput(b, benchModel{onnx: wide, in: "input", out: "output", width: 256, outW: 10, rows: 8192, batch: 256}, rowio.Parquet)
}

// throughput runs, in each iteration, one pass of raw ONNX Runtime over
// the pre-formed batches and one whole job over the same rows, timing
// each: both see the same load, which on a shared machine moves more
// between runs than between the two halves of one. It reports both rates
// and their ratio (job ÷ raw).
func throughput(b *testing.B, m benchModel, outs ...rowio.Format) {
	orttest.Require(b)
	workers := runtime.GOMAXPROCS(0)
	path, batches := benchInput(b, m)
	modelPath := filepath.Join(b.TempDir(), "model.onnx")
	if err := os.WriteFile(modelPath, m.onnx, 0o644); err != nil {
		b.Fatal(err)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	so.SetIntraOpNumThreads(1)
	so.SetInterOpNumThreads(1)
	s, err := ort.NewDynamicAdvancedSession(modelPath, []string{m.in}, []string{m.out}, so)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	raw := func() {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				out, _ := ort.NewEmptyTensor[float32](ort.NewShape(int64(m.batch), int64(m.outW)))
				defer out.Destroy()
				for i := w; i < len(batches); i += workers {
					in, err := ort.NewTensor(ort.NewShape(int64(m.batch), int64(m.width)), batches[i])
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
	model, err := onnx.LoadBytes("bench", m.onnx, onnx.WithIntraOpThreads(1))
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	schema := rowio.Schema{Keys: []rowio.Field{{Name: "id", Type: serving.Int64}}}
	if m.columns != nil {
		schema.Inputs = []rowio.Input{{Name: m.in, Columns: m.columns}}
	}
	for _, out := range outs {
		b.Run("parquet-to-"+out.String(), func(b *testing.B) {
			dir := b.TempDir()
			var rawTime, jobTime time.Duration
			i := 0
			for b.Loop() {
				i++
				start := time.Now()
				raw()
				rawTime += time.Since(start)
				start = time.Now()
				s, err := job.Run(context.Background(), model, path, filepath.Join(dir, fmt.Sprint(i)), job.WithSchema(schema),
					job.WithBatchRows(m.batch), job.WithWorkers(workers), job.WithOutputFormat(out))
				jobTime += time.Since(start)
				if err != nil || s.Rows != int64(m.rows) {
					b.Fatalf("%v, %+v", err, s)
				}
			}
			rows := float64(m.rows * i)
			b.ReportMetric(rows/rawTime.Seconds(), "raw-rows/s")
			b.ReportMetric(rows/jobTime.Seconds(), "job-rows/s")
			b.ReportMetric(rawTime.Seconds()/jobTime.Seconds(), "job/raw")
		})
	}
}

// benchInput writes m.rows rows (an INT64 id and the input, as scalar
// columns or one vector column) to a Parquet file, and returns them as
// pre-formed batches too.
func benchInput(b *testing.B, m benchModel) (string, [][]float32) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "rows.parquet")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, _ := rowio.NewWriter(rowio.Parquet, f)
	var batches [][]float32
	for lo := 0; lo < m.rows; lo += m.batch {
		ids, x := make([]int64, m.batch), make([]float32, m.batch*m.width)
		for r := range m.batch {
			ids[r] = int64(lo + r)
			for c := range m.width {
				x[r*m.width+c] = float32((lo+r)*(c+1)%97) / 97
			}
		}
		fr := &rowio.Frame{Rows: m.batch, Cols: []rowio.Col{{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids}}}
		if m.columns == nil {
			fr.Cols = append(fr.Cols, rowio.Col{Field: rowio.Field{Name: m.in, Type: serving.FP32, Width: m.width}, Data: x})
		} else {
			for c, name := range m.columns {
				col := make([]float32, m.batch)
				for r := range col {
					col[r] = x[r*m.width+c]
				}
				fr.Cols = append(fr.Cols, rowio.Col{Field: rowio.Field{Name: name, Type: serving.FP32}, Data: col})
			}
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

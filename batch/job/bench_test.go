package job_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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

// benchModel is a model to run a job with and the shape of its rows.
type benchModel struct {
	onnx        []byte
	in, out     string
	width, outW int
	rows, batch int
	textRows    int      // for the JSONL and CSV sub-benchmarks; 0: none
	columns     []string // input as scalar columns; nil: one vector column named in
}

// BenchmarkThroughput measures a whole job over the demo fraud MLP (read
// Parquet, score through backend/onnx, write Parquet parts with fsync
// and a manifest) against three floors timed in the same iteration, so
// that all four see the same load: ONNX Runtime alone on the same rows as
// pre-formed [1024, 8] batches (as many goroutines as the job has
// workers, the same session options and batch rows), parquet-go reading the input's columns alone, and parquet-go
// writing the job's output alone (see floors_test.go). The text
// sub-benchmarks time the job from and to JSONL and CSV against raw ONNX
// Runtime only. job-cores is the job's CPU time over its wall time (2 is
// both cores busy), raw-cores the same for raw ONNX Runtime, as many
// cores as the load left a pure compute loop; load1 the load average
// after the run, since other work on the machine moves every figure.
//
// The job and raw ORT run back to back in each iteration, taking turns
// to go first, and job/raw-min, -med and -max are the spread of the
// iterations' own ratios (job/raw-cpu-med: the job's CPU over raw's, the
// figure load moves least): on a shared machine a ratio of totals swings
// with whatever else ran during one of them. Run enough iterations for a
// median (-benchtime 8x).
func BenchmarkThroughput(b *testing.B) {
	fraud, err := onnxbuild.FraudMLP()
	if err != nil {
		b.Fatal(err)
	}
	throughput(b, benchModel{onnx: fraud, in: "features", out: "score", width: 8, outW: 1, rows: 1 << 21, batch: 1024,
		textRows: 1 << 18, columns: onnxbuild.FraudFeatures})
}

// BenchmarkThroughputWide is the same for the 256→1024→1024→10 MLP the
// batch package benchmarks (about 30 µs of CPU a row in batches), its
// input one vector column: a model whose rows cost more than the I/O
// around them. Parquet to Parquet only.
//
// The jobs are large enough (2M fraud rows, 32 parts; 64k wide rows, two
// seconds of the model's CPU) that what every job pays once, opening the
// input and committing its last part (about 20 ms of fsyncs here), is a
// few percent of the time, as in the jobs users run; the text
// sub-benchmarks use 256k rows, as reading JSONL is slow.
func BenchmarkThroughputWide(b *testing.B) {
	wide, err := onnxbuild.RandomMLP("wide", []int{256, 1024, 1024, 10}, "softmax", 7)
	if err != nil {
		b.Fatal(err)
	}
	throughput(b, benchModel{onnx: wide, in: "input", out: "output", width: 256, outW: 10, rows: 1 << 16, batch: 256})
}

func throughput(b *testing.B, m benchModel) {
	orttest.Require(b)
	workers := runtime.GOMAXPROCS(0)
	dir := b.TempDir()
	path, batches := benchInput(b, m, dir, rowio.Parquet)
	modelPath := filepath.Join(dir, "model.onnx")
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
	raw := func(rows int, keep []float32) { // the first rows, as batches
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				out, _ := ort.NewEmptyTensor[float32](ort.NewShape(int64(m.batch), int64(m.outW)))
				defer out.Destroy()
				for i := w; i < rows/m.batch; i += workers {
					in, err := ort.NewTensor(ort.NewShape(int64(m.batch), int64(m.width)), batches[i])
					if err != nil {
						b.Error(err)
						return
					}
					if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
						b.Error(err)
					}
					in.Destroy()
					if keep != nil {
						copy(keep[i*m.batch*m.outW:], out.GetData())
					}
				}
			})
		}
		wg.Wait()
	}
	answers := make([]float32, m.rows*m.outW)
	raw(m.rows, answers)
	pre := formOutput(m, answers)
	model, err := onnx.LoadBytes("bench", m.onnx, onnx.WithIntraOpThreads(1))
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	schema := rowio.Schema{Keys: []rowio.Field{{Name: "id", Type: serving.Int64}}}
	if m.columns != nil {
		schema.Inputs = []rowio.Input{{Name: m.in, Columns: m.columns}}
	}
	runJob := func(in, out string, f rowio.Format, rows int) {
		s, err := job.Run(context.Background(), model, in, out, job.WithSchema(schema),
			job.WithBatchRows(m.batch), job.WithWorkers(workers), job.WithOutputFormat(f))
		if err != nil || s.Rows != int64(rows) {
			b.Fatalf("%v, %+v", err, s)
		}
	}
	b.Run("parquet-to-parquet", func(b *testing.B) {
		dir := b.TempDir()
		var rawT, readT, writeT, jobT stage
		var ratios, cpuRatios []float64
		i := 0
		for b.Loop() {
			i++
			// The job and raw ORT back to back, in turns first, so that
			// each iteration's ratio compares two runs under the same load
			// and neither always follows the floors' allocations.
			var r, jb stage
			pair := []func(){
				func() { r.run(func() { labelled("raw", func() { raw(m.rows, nil) }) }) },
				func() {
					jb.run(func() {
						labelled("job", func() { runJob(path, filepath.Join(dir, "job", fmt.Sprint(i)), rowio.Parquet, m.rows) })
					})
				},
			}
			pair[i%2]()
			pair[1-i%2]()
			ratios = append(ratios, r.wall.Seconds()/jb.wall.Seconds())
			cpuRatios = append(cpuRatios, jb.cpu.Seconds()/r.cpu.Seconds())
			rawT.add(r)
			jobT.add(jb)
			readT.run(func() { readFloor(b, path, m) })
			writeT.run(func() { writeFloor(b, filepath.Join(dir, "floor", fmt.Sprint(i)), pre, m.rows) })
		}
		rows := float64(m.rows * i)
		b.ReportMetric(rows/rawT.wall.Seconds(), "raw-rows/s")
		b.ReportMetric(rows/readT.wall.Seconds(), "read-rows/s")
		b.ReportMetric(rows/writeT.wall.Seconds(), "write-rows/s")
		b.ReportMetric(rows/jobT.wall.Seconds(), "job-rows/s")
		b.ReportMetric(rawT.wall.Seconds()/jobT.wall.Seconds(), "job/raw")
		lo, med, hi := spread(ratios)
		b.ReportMetric(lo, "job/raw-min")
		b.ReportMetric(med, "job/raw-med")
		b.ReportMetric(hi, "job/raw-max")
		_, med, _ = spread(cpuRatios)
		b.ReportMetric(med, "job/raw-cpu-med")
		b.ReportMetric(jobT.cpu.Seconds()/jobT.wall.Seconds(), "job-cores")
		b.ReportMetric(rawT.cpu.Seconds()/rawT.wall.Seconds(), "raw-cores")
		b.ReportMetric(float64(jobT.cpu.Nanoseconds())/rows, "job-cpu-ns/row")
		b.ReportMetric(float64(rawT.cpu.Nanoseconds())/rows, "raw-cpu-ns/row")
		b.ReportMetric(float64(readT.cpu.Nanoseconds())/rows, "read-cpu-ns/row")
		b.ReportMetric(float64(writeT.cpu.Nanoseconds())/rows, "write-cpu-ns/row")
		b.ReportMetric(loadAverage(), "load1")
	})
	if m.textRows == 0 {
		return
	}
	for _, c := range []struct{ in, out rowio.Format }{
		{rowio.Parquet, rowio.JSONL}, {rowio.Parquet, rowio.CSV}, {rowio.JSONL, rowio.Parquet}, {rowio.CSV, rowio.Parquet},
	} {
		b.Run(c.in.String()+"-to-"+c.out.String(), func(b *testing.B) {
			t := m
			t.rows = m.textRows
			in, _ := benchInput(b, t, b.TempDir(), c.in)
			dir := b.TempDir()
			var rawT, jobT stage
			i := 0
			for b.Loop() {
				i++
				rawT.run(func() { raw(t.rows, nil) })
				jobT.run(func() { runJob(in, filepath.Join(dir, fmt.Sprint(i)), c.out, t.rows) })
			}
			rows := float64(t.rows * i)
			b.ReportMetric(rows/rawT.wall.Seconds(), "raw-rows/s")
			b.ReportMetric(rows/jobT.wall.Seconds(), "job-rows/s")
			b.ReportMetric(rawT.wall.Seconds()/jobT.wall.Seconds(), "job/raw")
			b.ReportMetric(jobT.cpu.Seconds()/jobT.wall.Seconds(), "job-cores")
			b.ReportMetric(float64(jobT.cpu.Nanoseconds())/rows, "job-cpu-ns/row")
			b.ReportMetric(loadAverage(), "load1")
		})
	}
}

// labelled runs f with the pprof label stage=name, which the goroutines
// it starts inherit: go tool pprof -tagfocus stage=job shows the job's
// own profile from a -cpuprofile of the benchmark.
func labelled(name string, f func()) {
	pprof.Do(context.Background(), pprof.Labels("stage", name), func(context.Context) { f() })
}

// benchInput writes m.rows rows (an INT64 id and the input, as scalar
// columns or one vector column) to a file in dir, and returns them as
// pre-formed batches too.
func benchInput(b *testing.B, m benchModel, dir string, format rowio.Format) (string, [][]float32) {
	b.Helper()
	path := filepath.Join(dir, "rows"+format.Ext())
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w, _ := rowio.NewWriter(format, bw)
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
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	return path, batches
}

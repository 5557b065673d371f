package job_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/internal/tabulartest"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// Every ai.onnx.ml fixture scored by a batch job, from a Parquet and from a
// CSV file laid out as the default schema reads it (one column per model
// input: a scalar column for a per-column [N, 1] input, a vector for a
// wider one), gives in its output file exactly what ONNX Runtime gives for
// the same rows: string labels as text, a ZipMap output as a vector of its
// class probabilities.
func TestTabularBatchJob(t *testing.T) {
	orttest.Require(t)
	for _, c := range tabulartest.Servable(t) {
		for _, format := range []rowio.Format{rowio.Parquet, rowio.CSV} {
			t.Run(c.Name+"/"+format.String(), func(t *testing.T) {
				m, err := onnx.Load(c.Path, onnx.WithLogger(slog.New(slog.DiscardHandler)))
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				dir := t.TempDir()
				in := filepath.Join(dir, "rows"+format.Ext())
				writeTensors(t, in, format, c.Inputs)
				out := filepath.Join(dir, "out")
				// Batches of 4 rows: the fixtures' 3 to 8 rows take one or two runs.
				s, err := job.Run(context.Background(), m, in, out, job.WithBatchRows(4), job.WithOutputFormat(rowio.Parquet))
				if err != nil {
					t.Fatal(err)
				}
				if s.Rows != c.Rows() || s.Errors != 0 {
					t.Fatalf("summary: %d rows, %d errors; want %d rows", s.Rows, s.Errors, c.Rows())
				}
				md := m.Metadata()
				got := readTensors(t, filepath.Join(out, "part-000000.parquet"), md.Outputs)
				tabulartest.CheckResponse(t, c.Path, c.Inputs, md, got)
			})
		}
	}
}

// writeTensors writes the tensors as rows: one column per tensor, named
// after it, of as many elements a row as the tensor has past dim 0.
func writeTensors(t *testing.T, path string, format rowio.Format, ts []serving.Tensor) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := rowio.NewWriter(format, f)
	if err != nil {
		t.Fatal(err)
	}
	fr := &rowio.Frame{Rows: int(ts[0].Shape[0])}
	for _, x := range ts {
		fr.Cols = append(fr.Cols, rowio.Col{Field: rowio.Field{Name: x.Name, Type: x.DataType, Width: rowWidth(x.Shape)}, Data: x.Data()})
	}
	if err := w.Write(fr); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readTensors reads the outputs back from a job's part as tensors of the
// metadata's shapes.
func readTensors(t *testing.T, path string, specs []serving.TensorSpec) []serving.Tensor {
	t.Helper()
	var fields []rowio.Field
	for _, s := range specs {
		fields = append(fields, rowio.Field{Name: s.Name, Type: s.DataType, Width: rowWidth(s.Shape)})
	}
	r, err := rowio.Open(path, 0, fields)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var fr rowio.Frame
	if err := r.Read(&fr, 1000); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	var out []serving.Tensor
	for i, s := range specs {
		shape := append([]int64{int64(fr.Len())}, s.Shape[1:]...)
		x, err := serving.FromSlice(s.Name, s.DataType, shape, fr.Cols[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

func rowWidth(shape []int64) int {
	w := 1
	for _, d := range shape[1:] {
		w *= int(d)
	}
	return w
}

package rowio_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// benchRows is the shape of the batch job's fraud input: an INT64 id and
// 8 FP32 feature columns.
const benchRows = 1 << 18

func benchFrame(rows int) *rowio.Frame {
	f := &rowio.Frame{Rows: rows}
	ids := make([]int64, rows)
	for i := range ids {
		ids[i] = int64(i)
	}
	f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids})
	for c := range 8 {
		x := make([]float32, rows)
		for i := range x {
			x[i] = float32(i*(c+1)%97) / 97
		}
		f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: fmt.Sprintf("f%d", c), Type: serving.FP32}, Data: x})
	}
	return f
}

// BenchmarkParquetRead reads the fraud input in batches of 1024 rows with
// rowio, and, as the floor, with parquet-go's typed page reads into
// preallocated slices (no frame, no bad-row bookkeeping).
func BenchmarkParquetRead(b *testing.B) {
	var buf bytes.Buffer
	w, _ := rowio.NewWriter(rowio.Parquet, &buf)
	in := benchFrame(benchRows)
	if err := w.Write(in); err != nil {
		b.Fatal(err)
	}
	w.Close()
	data := buf.Bytes()
	fields := in.Fields()
	b.Run("rowio", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			r, err := rowio.NewReader(rowio.Parquet, bytes.NewReader(data), int64(len(data)), fields)
			if err != nil {
				b.Fatal(err)
			}
			rows := 0
			var f rowio.Frame // reused, as a streaming reader does
			for {
				if err := r.Read(&f, 1024); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				rows += f.Len()
			}
			if rows != benchRows {
				b.Fatalf("%d rows", rows)
			}
		}
		reportRate(b, cpu0)
	})
	b.Run("parquet-go", func(b *testing.B) {
		ids, xs := make([]int64, benchRows), make([][]float32, 8)
		for c := range xs {
			xs[c] = make([]float32, benchRows)
		}
		cpu0 := cpuTime()
		for b.Loop() {
			pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				b.Fatal(err)
			}
			for c := range 9 {
				leaf, _ := pf.Schema().Lookup(fields[c].Name)
				at := 0
				for _, g := range pf.RowGroups() {
					pages := g.ColumnChunks()[leaf.ColumnIndex].Pages()
					for {
						p, err := pages.ReadPage()
						if errors.Is(err, io.EOF) {
							break
						} else if err != nil {
							b.Fatal(err)
						}
						var n int
						if c == 0 {
							n, _ = p.Values().(parquet.Int64Reader).ReadInt64s(ids[at:])
						} else {
							n, _ = p.Values().(parquet.FloatReader).ReadFloats(xs[c-1][at:])
						}
						at += n
						parquet.Release(p)
					}
					pages.Close()
				}
				if at != benchRows {
					b.Fatalf("column %d: %d values", c, at)
				}
			}
		}
		reportRate(b, cpu0)
	})
}

// outRow is the batch job's output row for the fraud model, for the
// floor of BenchmarkParquetWrite.
type outRow struct {
	Row       int64   `parquet:"row"`
	ID        int64   `parquet:"id"`
	Score     float32 `parquet:"score"`
	Model     string  `parquet:"model"`
	Version   string  `parquet:"model_version"`
	Timestamp int64   `parquet:"timestamp,timestamp(microsecond)"`
}

// BenchmarkParquetWrite writes the batch job's fraud output (row, id,
// score, model, model_version, timestamp) in frames of 1024 rows with
// rowio, and, as the floor, with parquet-go's GenericWriter from
// pre-formed structs (its fastest path), both Snappy, row groups of
// rowio.MaxRowGroupRows.
func BenchmarkParquetWrite(b *testing.B) {
	const batch = 1024
	var frames []*rowio.Frame
	rows := make([]outRow, 0, benchRows)
	for lo := 0; lo < benchRows; lo += batch {
		n := batch
		rowNums, ids, scores, times := make([]int64, n), make([]int64, n), make([]float32, n), make([]int64, n)
		models, versions := make([][]byte, n), make([][]byte, n)
		for i := range n {
			rowNums[i], ids[i], scores[i], times[i] = int64(lo+i), int64(lo+i), float32((lo+i)%1000)/1000, 1_700_000_000_000_000
			models[i], versions[i] = []byte("fraud"), []byte("1")
			rows = append(rows, outRow{rowNums[i], ids[i], scores[i], "fraud", "1", times[i]})
		}
		frames = append(frames, &rowio.Frame{Rows: n, Cols: []rowio.Col{
			{Field: rowio.Field{Name: "row", Type: serving.Int64}, Data: rowNums},
			{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids},
			{Field: rowio.Field{Name: "score", Type: serving.FP32}, Data: scores},
			{Field: rowio.Field{Name: "model", Type: serving.Bytes}, Data: models},
			{Field: rowio.Field{Name: "model_version", Type: serving.Bytes}, Data: versions},
			{Field: rowio.Field{Name: "timestamp", Type: serving.Int64, Timestamp: true}, Data: times},
		}})
	}
	var buf bytes.Buffer
	b.Run("rowio", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			writeParquet(b, &buf, frames)
		}
		reportRate(b, cpu0)
		b.ReportMetric(float64(buf.Len())/benchRows, "bytes/row")
	})
	b.Run("parquet-go", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			buf.Reset()
			w := parquet.NewGenericWriter[outRow](&buf, parquet.Compression(&parquet.Snappy))
			for lo := 0; lo < benchRows; lo += rowio.MaxRowGroupRows {
				if _, err := w.Write(rows[lo:min(benchRows, lo+rowio.MaxRowGroupRows)]); err != nil {
					b.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, cpu0)
		b.ReportMetric(float64(buf.Len())/benchRows, "bytes/row")
	})
}

// BenchmarkParquetWriteList writes a 10-wide FP32 vector column, a model's
// class scores as the wide MLP job writes them: a Parquet list whose
// values each carry their repetition and definition levels.
func BenchmarkParquetWriteList(b *testing.B) {
	const batch, wd = 256, 10
	var frames []*rowio.Frame
	for lo := 0; lo < benchRows; lo += batch {
		x := make([]float32, batch*wd)
		for i := range x {
			x[i] = float32((lo*wd+i)%977) / 977
		}
		frames = append(frames, &rowio.Frame{Rows: batch, Cols: []rowio.Col{{Field: rowio.Field{Name: "output", Type: serving.FP32, Width: wd}, Data: x}}})
	}
	var buf bytes.Buffer
	cpu0 := cpuTime()
	for b.Loop() {
		writeParquet(b, &buf, frames)
	}
	reportRate(b, cpu0)
}

// writeParquet writes frames into buf, emptied first, as one Parquet file.
func writeParquet(b *testing.B, buf *bytes.Buffer, frames []*rowio.Frame) {
	buf.Reset()
	w, _ := rowio.NewWriter(rowio.Parquet, buf)
	for _, f := range frames {
		if err := w.Write(f); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the CPU time this process has used: under load from other
// work a steadier measure than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRate(b *testing.B, cpu0 time.Duration) {
	rows := float64(benchRows * b.N)
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/rows, "cpu-ns/row")
}

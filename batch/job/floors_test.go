package job_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/rowio"
)

// The floors a job is measured against, each one stage of it done alone
// with nothing else in the way: how fast parquet-go reads the input's
// columns and writes the output's, as a program that knows the schema
// and holds all rows in memory would (raw ONNX Runtime is the third, in
// bench_test.go).

// readFloor reads the input's id column and feature columns (or vector
// column) from the file, page by page, copying each page's decoded
// values into preallocated slices: decompression and decoding, nothing
// per row.
func readFloor(b *testing.B, path string, m benchModel) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		b.Fatal(err)
	}
	cols := m.columns
	if cols == nil {
		cols = []string{m.in}
	}
	ids, xs := make([]int64, m.rows), make([]float32, m.rows*m.width)
	for c, name := range append([]string{"id"}, cols...) {
		path := []string{name}
		if c > 0 && m.columns == nil {
			path = append(path, "list", "element")
		}
		leaf, ok := pf.Schema().Lookup(path...)
		if !ok {
			leaf, _ = pf.Schema().Lookup(name)
		}
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
				data := p.Data()
				if c == 0 {
					at += copy(ids[at:], data.Int64())
				} else {
					at += copy(xs[at:], data.Float()) // a column's rows, or the vector's values
				}
				parquet.Release(p)
			}
			pages.Close()
		}
	}
}

// outputValues are the job's output columns for every row, pre-formed as
// parquet-go values: what writeFloor writes.
type outputValues struct {
	schema *parquet.Schema
	cols   [][]parquet.Value // per leaf column, in the schema's order
	rows   int               // a row group's
}

// formOutput makes the output of m's first row group (writeFloor writes
// it again for the next ones, a bounded memory): row, id, the model's
// answers (outs, row after row), model, model_version and timestamp, as
// the job writes them.
func formOutput(m benchModel, outs []float32) outputValues {
	rows := min(m.rows, rowio.MaxRowGroupRows)
	out := parquet.Node(parquet.Leaf(parquet.FloatType))
	if m.outW > 1 {
		out = parquet.Repeated(out)
	}
	delta := func(n parquet.Node) parquet.Node { return parquet.Encoded(n, &parquet.DeltaBinaryPacked) }
	s := parquet.NewSchema("servekit", parquet.Group{
		job.ColRow: delta(parquet.Int(64)), "id": delta(parquet.Int(64)), m.out: out, job.ColModel: parquet.String(),
		job.ColVersion: parquet.String(), job.ColTimestamp: delta(parquet.Timestamp(parquet.Microsecond)),
	})
	v := outputValues{schema: s, cols: make([][]parquet.Value, len(s.Columns())), rows: min(m.rows, rowio.MaxRowGroupRows)}
	now := time.Now().UnixMicro()
	for i, path := range s.Columns() {
		leaf, _ := s.Lookup(path...)
		col := make([]parquet.Value, 0, rows*max(1, len(outs)/m.rows))
		for r := range rows {
			switch path[0] {
			case job.ColRow, "id":
				col = append(col, parquet.Int64Value(int64(r)))
			case job.ColModel:
				col = append(col, parquet.ByteArrayValue([]byte("bench")))
			case job.ColVersion:
				col = append(col, parquet.ByteArrayValue([]byte("1")))
			case job.ColTimestamp:
				col = append(col, parquet.Int64Value(now))
			default:
				for j := range m.outW {
					val := parquet.FloatValue(outs[r*m.outW+j])
					if m.outW > 1 {
						val = val.Level(min(j, 1), 1, leaf.ColumnIndex)
					}
					col = append(col, val)
				}
			}
		}
		v.cols[i] = col
	}
	return v
}

// writeFloor writes the pre-formed output as the job lays it out: a file
// per part of job.DefaultPartRows rows, row groups of
// rowio.MaxRowGroupRows, the encodings and Snappy mode rowio writes, each
// file synced to disk and closed (the job must, to commit a part).
func writeFloor(b *testing.B, dir string, v outputValues, rows int) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for p, lo := 0, 0; lo < rows; p, lo = p+1, lo+int(job.DefaultPartRows) {
		hi := min(rows, lo+int(job.DefaultPartRows))
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("part-%06d.parquet", p)))
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 256<<10)
		w := parquet.NewWriter(bw, v.schema, parquet.Compression(fastSnappy{}))
		for g := lo; g < hi; g += rowio.MaxRowGroupRows {
			n := min(hi-g, v.rows)
			for i, cw := range w.ColumnWriters() {
				k := len(v.cols[i]) / v.rows // values per row in this column
				if _, err := cw.WriteRowValues(v.cols[i][:n*k]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// fastSnappy is Snappy in the fast mode rowio writes with, so that the
// write floor compresses as the job does.
type fastSnappy struct{}

func (fastSnappy) String() string                            { return "SNAPPY" }
func (fastSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }
func (fastSnappy) Encode(dst, src []byte) ([]byte, error)    { return s2.EncodeSnappy(dst, src), nil }
func (fastSnappy) Decode(dst, src []byte) ([]byte, error)    { return s2.Decode(dst, src) }

// cpuTime is the CPU time this process has used, all threads (ONNX
// Runtime's included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the 1-minute load average, 0 where it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// stage times one run of f: wall and CPU.
type stage struct{ wall, cpu time.Duration }

func (s *stage) run(f func()) {
	w, c := time.Now(), cpuTime()
	f()
	s.wall += time.Since(w)
	s.cpu += cpuTime() - c
}

func (s *stage) add(t stage) { s.wall, s.cpu = s.wall+t.wall, s.cpu+t.cpu }

// spread is the least, median and greatest of xs (sorted in place).
func spread(xs []float64) (lo, med, hi float64) {
	slices.Sort(xs)
	n := len(xs)
	if n == 0 {
		return 0, 0, 0
	}
	med = xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[0], med, xs[n-1]
}

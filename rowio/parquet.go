package rowio

import (
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/servekit/servekit/serving"
)

// parquetWriter writes a Parquet file whose schema follows the first
// frame: a required column per scalar field, a repeated column per vector
// (read back by pandas, Spark and DuckDB as a list), FP16 and BF16 as
// FLOAT, timestamps as TIMESTAMP(MICROS, UTC), text as STRING. Snappy
// compression. Each column of a frame goes straight to its parquet-go
// ColumnWriter, which encodes and compresses a page whenever its buffer
// fills, in runs of values built by typed loops; every MaxRowGroupRows
// rows the writer flushes the pages as a row group, bounding memory.
// (Typed writes into a parquet.Buffer then WriteRowGroup, the earlier
// design, boxed every value on the way out of the buffer: twice the CPU.)
type parquetWriter struct {
	out    io.Writer
	w      *parquet.Writer
	fields []Field
	cols   []*parquet.ColumnWriter // per field
	rows   int                     // in the open row group
	vals   []parquet.Value
}

// MaxRowGroupRows is the most rows a Parquet writer holds before it writes
// them out as a row group.
const MaxRowGroupRows = 64 << 10

// runValues bounds the values handed to a column writer at once.
const runValues = 4096

func newParquetWriter(w io.Writer) *parquetWriter { return &parquetWriter{out: w} }

func (w *parquetWriter) Write(f *Frame) (err error) {
	defer recoverParquet(&err)
	if err := checkFields(&w.fields, f); err != nil {
		return err
	}
	if w.w == nil {
		if err := w.start(); err != nil {
			return err
		}
	}
	n := f.Len()
	for lo := 0; lo < n; {
		hi := min(n, lo+MaxRowGroupRows-w.rows)
		for i, c := range f.Cols {
			if err := w.column(w.cols[i], c, lo, hi); err != nil {
				return err
			}
		}
		w.rows += hi - lo
		if w.rows >= MaxRowGroupRows {
			if err := w.w.Flush(); err != nil {
				return err
			}
			w.rows = 0
		}
		lo = hi
	}
	return nil
}

func (w *parquetWriter) start() error {
	group := parquet.Group{}
	for _, fl := range w.fields {
		n, err := parquetNode(fl)
		if err != nil {
			return err
		}
		group[fl.Name] = n
	}
	s := parquet.NewSchema("servekit", group)
	w.w = parquet.NewWriter(w.out, s, parquet.Compression(fastSnappy{}))
	all := w.w.ColumnWriters()
	for _, fl := range w.fields {
		leaf, _ := s.Lookup(fl.Name)
		w.cols = append(w.cols, all[leaf.ColumnIndex])
	}
	return nil
}

// column writes rows [lo, hi) of c, in runs of whole rows.
func (w *parquetWriter) column(cw *parquet.ColumnWriter, c Col, lo, hi int) error {
	wd := c.width()
	step := max(1, runValues/wd)
	for r := lo; r < hi; r += step {
		end := min(hi, r+step)
		n := (end - r) * wd
		if cap(w.vals) < n {
			w.vals = make([]parquet.Value, n)
		}
		w.vals = w.vals[:n]
		values(w.vals, c, r*wd, end*wd)
		if c.Width > 1 {
			levels(w.vals, wd)
		}
		if _, err := cw.WriteRowValues(w.vals); err != nil {
			return err
		}
	}
	return nil
}

// levels marks vs, rows of wd values each, as the list elements they
// are: repetition level 0 for a row's first value, 1 for the rest,
// definition level 1. The pointer setters inline; Value.Level copies the
// 24-byte value in and out and, with a division a value to find a row's
// first, cost as much as building the values (measured on 10-wide rows).
func levels(vs []parquet.Value, wd int) {
	for r := 0; r+wd <= len(vs); r += wd {
		row := vs[r : r+wd]
		for i := range row {
			v := &row[i]
			v.SetRepetitionLevel(1)
			v.SetDefinitionLevel(1)
			v.SetColumnIndex(0)
		}
		row[0].SetRepetitionLevel(0)
	}
}

// values stores elements [lo, hi) of c in vs (len hi-lo) as values of
// the column's physical type. (Indexed stores: appending a Value, a
// struct with a pointer, costs ten times as much.)
func values(vs []parquet.Value, c Col, lo, hi int) {
	switch d := c.Data.(type) {
	case []float32:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.FloatValue(x)
		}
	case []float64:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.DoubleValue(x)
		}
	case []int64:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.Int64Value(x)
		}
	case []int32:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.Int32Value(x)
		}
	case [][]byte:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.ByteArrayValue(x)
		}
	case []bool:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.BooleanValue(x)
		}
	case []uint64:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.Int64Value(int64(x)) // UINT(64) keeps the bits in an INT64
		}
	case []uint32:
		for i, x := range d[lo:hi] {
			vs[i] = parquet.Int32Value(int32(x)) // UINT(32) keeps the bits in an INT32
		}
	case []int8:
		int32Values(vs, d[lo:hi])
	case []int16:
		int32Values(vs, d[lo:hi])
	case []uint8:
		int32Values(vs, d[lo:hi])
	case []uint16:
		if c.Type == serving.Uint16 {
			int32Values(vs, d[lo:hi])
			return
		}
		dec := serving.FP16ToFloat32
		if c.Type == serving.BF16 {
			dec = serving.BF16ToFloat32
		}
		for i, x := range d[lo:hi] {
			vs[i] = parquet.FloatValue(dec(x))
		}
	}
}

func int32Values[T int8 | int16 | uint8 | uint16](vs []parquet.Value, d []T) {
	for i, x := range d {
		vs[i] = parquet.Int32Value(int32(x))
	}
}

// fastSnappy is the Snappy codec in its fast mode (s2.EncodeSnappy):
// the same Snappy blocks every reader takes, for about half the CPU of
// the "better" mode that parquet-go's codec uses, at a few percent more
// bytes on these columns.
type fastSnappy struct{}

func (fastSnappy) String() string                            { return "SNAPPY" }
func (fastSnappy) CompressionCodec() format.CompressionCodec { return format.Snappy }
func (fastSnappy) Encode(dst, src []byte) ([]byte, error)    { return s2.EncodeSnappy(dst, src), nil }

func (fastSnappy) Decode(dst, src []byte) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	return s2.Decode(dst[:n], src)
}

// parquetNode is a field's column. Integers are DELTA_BINARY_PACKED,
// as Parquet 2 writers (parquet-mr, Spark) write them: row numbers,
// timestamps and most keys climb or repeat, and their deltas pack to a
// few bits, which also leaves Snappy little to do (a fraud output row
// shrinks from 9 to under 1 byte where ids are sequential, for less CPU).
func parquetNode(f Field) (parquet.Node, error) {
	var n parquet.Node
	switch f.Type {
	case serving.Bool:
		n = parquet.Leaf(parquet.BooleanType)
	case serving.Int8:
		n = parquet.Int(8)
	case serving.Int16:
		n = parquet.Int(16)
	case serving.Int32:
		n = parquet.Int(32)
	case serving.Int64:
		n = parquet.Int(64)
		if f.Timestamp {
			n = parquet.Timestamp(parquet.Microsecond)
		}
	case serving.Uint8:
		n = parquet.Uint(8)
	case serving.Uint16:
		n = parquet.Uint(16)
	case serving.Uint32:
		n = parquet.Uint(32)
	case serving.Uint64:
		n = parquet.Uint(64)
	case serving.FP16, serving.BF16, serving.FP32:
		n = parquet.Leaf(parquet.FloatType)
	case serving.FP64:
		n = parquet.Leaf(parquet.DoubleType)
	case serving.Bytes:
		n = parquet.String()
	default:
		return nil, serving.Errorf(serving.InvalidArgument, "rowio: column %q: no Parquet type for %v", f.Name, f.Type)
	}
	if k := n.Type().Kind(); k == parquet.Int32 || k == parquet.Int64 {
		n = parquet.Encoded(n, &parquet.DeltaBinaryPacked)
	}
	if f.Width > 1 {
		n = parquet.Repeated(n)
	}
	return n, nil
}

func (w *parquetWriter) Close() (err error) {
	defer recoverParquet(&err)
	if w.w == nil {
		return nil
	}
	return w.w.Close()
}

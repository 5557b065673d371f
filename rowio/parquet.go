package rowio

import (
	"encoding/binary"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/serving"
)

// parquetWriter writes a Parquet file whose schema follows the first
// frame: a required column per scalar field, a repeated column per vector
// (read back by pandas, Spark and DuckDB as a list), FP16 and BF16 as
// FLOAT, timestamps as TIMESTAMP(MICROS, UTC), text as STRING. Snappy
// compression. Frames are copied column by column into a parquet.Buffer
// (typed writes for scalars, no per-value Value), which is written out as
// a row group every MaxRowGroupRows rows, bounding memory.
type parquetWriter struct {
	out    io.Writer
	w      *parquet.Writer
	buf    *parquet.Buffer
	fields []Field
	col    []int // per field, its leaf column index
	vals   []parquet.Value
	scr    scratch
}

// scratch holds conversion buffers reused across frames.
type scratch struct {
	i32   []int32
	i64   []int64
	f32   []float32
	bytes []byte
}

// MaxRowGroupRows is the most rows a Parquet writer holds before it writes
// them out as a row group.
const MaxRowGroupRows = 64 << 10

func newParquetWriter(w io.Writer) *parquetWriter { return &parquetWriter{out: w} }

func (w *parquetWriter) Write(f *Frame) (err error) {
	defer recoverParquet(&err)
	if err := checkFields(&w.fields, f); err != nil {
		return err
	}
	if w.w == nil {
		group := parquet.Group{}
		for _, fl := range w.fields {
			n, err := parquetNode(fl)
			if err != nil {
				return err
			}
			group[fl.Name] = n
		}
		s := parquet.NewSchema("servekit", group)
		for _, fl := range w.fields {
			leaf, _ := s.Lookup(fl.Name)
			w.col = append(w.col, leaf.ColumnIndex)
		}
		w.w = parquet.NewWriter(w.out, s, parquet.Compression(&parquet.Snappy))
		w.buf = parquet.NewBuffer(s)
	}
	for lo := 0; lo < f.Len(); {
		hi := min(f.Len(), lo+MaxRowGroupRows-int(w.buf.NumRows()))
		part := f
		if lo > 0 || hi < f.Len() {
			part = f.Slice(lo, hi)
		}
		cbs := w.buf.ColumnBuffers()
		for i, c := range part.Cols {
			if err := w.column(cbs[w.col[i]], c, w.col[i]); err != nil {
				return err
			}
		}
		if w.buf.NumRows() >= MaxRowGroupRows {
			if err := w.flush(); err != nil {
				return err
			}
		}
		lo = hi
	}
	return nil
}

// column appends a column's rows to its buffer: a typed write for a
// scalar, values with levels for a vector.
func (w *parquetWriter) column(cb parquet.ColumnBuffer, c Col, col int) error {
	if c.Width <= 1 {
		if ok, err := w.typed(cb, c); ok {
			return err
		}
	}
	wd := c.width()
	w.vals = w.vals[:0]
	for r := range c.Len() {
		for j := range wd {
			v := parquetValue(c, r*wd+j)
			if c.Width > 1 {
				v = v.Level(min(j, 1), 1, col)
			} else {
				v = v.Level(0, 0, col)
			}
			w.vals = append(w.vals, v)
		}
	}
	_, err := cb.WriteValues(w.vals)
	return err
}

// typed writes a scalar column with the buffer's typed method, converting
// to the physical type; ok is false when the buffer has no such method.
func (w *parquetWriter) typed(cb parquet.ColumnBuffer, c Col) (ok bool, err error) {
	s := &w.scr
	switch d := c.Data.(type) {
	case []float32:
		return writeTyped(cb, d, func(b interface{ WriteFloats([]float32) (int, error) }, v []float32) error {
			_, err := b.WriteFloats(v)
			return err
		})
	case []float64:
		return writeTyped(cb, d, func(b interface{ WriteDoubles([]float64) (int, error) }, v []float64) error {
			_, err := b.WriteDoubles(v)
			return err
		})
	case []int64:
		return writeTyped(cb, d, func(b interface{ WriteInt64s([]int64) (int, error) }, v []int64) error {
			_, err := b.WriteInt64s(v)
			return err
		})
	case []uint64:
		s.i64 = convert(s.i64, d, func(x uint64) int64 { return int64(x) })
		return writeTyped(cb, s.i64, func(b interface{ WriteInt64s([]int64) (int, error) }, v []int64) error {
			_, err := b.WriteInt64s(v)
			return err
		})
	case []int32:
		return writeTyped(cb, d, func(b interface{ WriteInt32s([]int32) (int, error) }, v []int32) error {
			_, err := b.WriteInt32s(v)
			return err
		})
	case []bool:
		return writeTyped(cb, d, func(b interface{ WriteBooleans([]bool) (int, error) }, v []bool) error {
			_, err := b.WriteBooleans(v)
			return err
		})
	case [][]byte:
		s.bytes = s.bytes[:0]
		for _, e := range d {
			s.bytes = binary.LittleEndian.AppendUint32(s.bytes, uint32(len(e)))
			s.bytes = append(s.bytes, e...)
		}
		return writeTyped(cb, s.bytes, func(b interface{ WriteByteArrays([]byte) (int, error) }, v []byte) error {
			_, err := b.WriteByteArrays(v)
			return err
		})
	case []uint16:
		if c.Type == serving.FP16 || c.Type == serving.BF16 {
			s.f32 = s.f32[:0]
			for i := range d {
				v, _ := float64At(c, i)
				s.f32 = append(s.f32, float32(v))
			}
			return writeTyped(cb, s.f32, func(b interface{ WriteFloats([]float32) (int, error) }, v []float32) error {
				_, err := b.WriteFloats(v)
				return err
			})
		}
		s.i32 = convert(s.i32, d, func(x uint16) int32 { return int32(x) })
	case []int8:
		s.i32 = convert(s.i32, d, func(x int8) int32 { return int32(x) })
	case []int16:
		s.i32 = convert(s.i32, d, func(x int16) int32 { return int32(x) })
	case []uint8:
		s.i32 = convert(s.i32, d, func(x uint8) int32 { return int32(x) })
	case []uint32:
		s.i32 = convert(s.i32, d, func(x uint32) int32 { return int32(x) }) // UINT(32) keeps the bits in an INT32
	default:
		return false, nil
	}
	return writeTyped(cb, s.i32, func(b interface{ WriteInt32s([]int32) (int, error) }, v []int32) error {
		_, err := b.WriteInt32s(v)
		return err
	})
}

func writeTyped[B any, T any](cb parquet.ColumnBuffer, v []T, write func(B, []T) error) (bool, error) {
	b, ok := cb.(B)
	if !ok {
		return false, nil
	}
	return true, write(b, v)
}

func convert[S, D any](dst []D, src []S, f func(S) D) []D {
	dst = dst[:0]
	for _, x := range src {
		dst = append(dst, f(x))
	}
	return dst
}

func (w *parquetWriter) flush() error {
	if w.buf.NumRows() == 0 {
		return nil
	}
	if _, err := w.w.WriteRowGroup(w.buf); err != nil {
		return err
	}
	w.buf.Reset()
	return nil
}

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
	if f.Width > 1 {
		n = parquet.Repeated(n)
	}
	return n, nil
}

func parquetValue(c Col, i int) parquet.Value {
	switch d := c.Data.(type) {
	case []bool:
		return parquet.BooleanValue(d[i])
	case []int8:
		return parquet.Int32Value(int32(d[i]))
	case []int16:
		return parquet.Int32Value(int32(d[i]))
	case []int32:
		return parquet.Int32Value(d[i])
	case []int64:
		return parquet.Int64Value(d[i])
	case []uint8:
		return parquet.Int32Value(int32(d[i]))
	case []uint32:
		return parquet.Int32Value(int32(d[i])) // UINT(32) keeps the bits in an INT32
	case []uint64:
		return parquet.Int64Value(int64(d[i]))
	case []float32:
		return parquet.FloatValue(d[i])
	case []float64:
		return parquet.DoubleValue(d[i])
	case [][]byte:
		return parquet.ByteArrayValue(d[i])
	case []uint16:
		if c.Type == serving.Uint16 {
			return parquet.Int32Value(int32(d[i]))
		}
		v, _ := float64At(c, i)
		return parquet.FloatValue(float32(v))
	}
	return parquet.NullValue()
}

func (w *parquetWriter) Close() (err error) {
	defer recoverParquet(&err)
	if w.w == nil {
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	return w.w.Close()
}

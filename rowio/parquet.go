package rowio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/serving"
)

// parquetReader reads rows with parquet-go, a frame at a time, keeping
// one page per column in memory (pages are read on demand from the
// io.ReaderAt). A vector field reads a repeated column, or a LIST of a
// primitive (the single leaf under the field's group).
type parquetReader struct {
	r        *parquet.Reader // the row path, when a field is a vector
	flat     *flatColumns    // the column path, when every field is a scalar
	closer   io.Closer
	fields   []Field
	colField []int  // leaf column index → field index, -1 when not read
	repeated []bool // per field: the leaf is repeated (nulls are empty lists)
	rows     []parquet.Row
	count    []int
	row      int64
	total    int64
}

func newParquetReader(ra io.ReaderAt, size int64, c io.Closer, fields []Field) (r *parquetReader, err error) {
	defer recoverParquet(&err)
	f, err := parquet.OpenFile(ra, size)
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "rowio: not a Parquet file: %w", err)
	}
	s := f.Schema()
	r = &parquetReader{r: parquet.NewReader(f), closer: c, fields: fields, total: f.NumRows(),
		colField: make([]int, len(s.Columns())), repeated: make([]bool, len(fields)), count: make([]int, len(fields))}
	for i := range r.colField {
		r.colField[i] = -1
	}
	cols := make([]int, len(fields))
	scalar := true
	for i, fl := range fields {
		leaf, err := leafOf(s, fl.Name)
		if err != nil {
			return nil, err
		}
		r.colField[leaf.ColumnIndex] = i
		r.repeated[i] = leaf.MaxRepetitionLevel > 0
		cols[i] = leaf.ColumnIndex
		scalar = scalar && !r.repeated[i] && fl.width() == 1
	}
	if scalar {
		r.flat = &flatColumns{groups: f.RowGroups(), cols: cols, bufs: make([][]parquet.Value, len(fields))}
	}
	return r, nil
}

// flatColumns reads scalar columns column by column, a row group at a
// time, straight from their pages: without rebuilding rows, which costs
// several times more than the values themselves.
type flatColumns struct {
	groups  []parquet.RowGroup
	cols    []int // leaf column of each field
	group   int   // current row group
	row     int64 // next row within it
	readers []parquet.ColumnChunkValueReader
	bufs    [][]parquet.Value
}

// next makes the current row group one with rows left, or says there is
// none.
func (c *flatColumns) next() (bool, error) {
	for c.group < len(c.groups) {
		g := c.groups[c.group]
		if c.row < g.NumRows() {
			if c.readers == nil {
				chunks := g.ColumnChunks()
				for _, col := range c.cols {
					vr := parquet.NewColumnChunkValueReader(chunks[col])
					if c.row > 0 {
						if err := vr.SeekToRow(c.row); err != nil {
							return false, err
						}
					}
					c.readers = append(c.readers, vr)
				}
			}
			return true, nil
		}
		if err := c.closeGroup(); err != nil {
			return false, err
		}
		c.group, c.row = c.group+1, 0
	}
	return false, nil
}

func (c *flatColumns) closeGroup() error {
	var errs []error
	for _, vr := range c.readers {
		errs = append(errs, vr.Close())
	}
	c.readers = nil
	return errors.Join(errs...)
}

// read reads up to n rows of every column into bufs and says how many.
func (c *flatColumns) read(n int) (int, error) {
	ok, err := c.next()
	if !ok || err != nil {
		return 0, err
	}
	k := int(min(int64(n), c.groups[c.group].NumRows()-c.row))
	for i, vr := range c.readers {
		if cap(c.bufs[i]) < k {
			c.bufs[i] = make([]parquet.Value, k)
		}
		buf := c.bufs[i][:k]
		for got := 0; got < k; {
			m, err := vr.ReadValues(buf[got:])
			got += m
			if got < k && err != nil {
				return 0, fmt.Errorf("column %d: %d of %d values: %w", c.cols[i], got, k, err)
			}
		}
		c.bufs[i] = buf
	}
	c.row += int64(k)
	return k, nil
}

// skip passes over up to n rows and says how many.
func (c *flatColumns) skip(n int64) (int64, error) {
	var done int64
	for done < n {
		ok, err := c.next()
		if !ok || err != nil {
			return done, err
		}
		m := min(n-done, c.groups[c.group].NumRows()-c.row)
		c.row += m
		done += m
		for _, vr := range c.readers {
			if err := vr.SeekToRow(c.row); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// leafOf finds the leaf column of a top-level field: the field itself, or
// the one leaf below it (a LIST's element).
func leafOf(s *parquet.Schema, name string) (parquet.LeafColumn, error) {
	var node parquet.Node
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name())
		if f.Name() == name {
			node = f
		}
	}
	if node == nil {
		return parquet.LeafColumn{}, serving.Errorf(serving.InvalidArgument, "rowio: Parquet file has no column %q (columns: %v)", name, names)
	}
	path := []string{name}
	for !node.Leaf() {
		fs := node.Fields()
		if len(fs) != 1 {
			return parquet.LeafColumn{}, serving.Errorf(serving.InvalidArgument, "rowio: Parquet column %q is a group of %d fields, not a value or a list", name, len(fs))
		}
		path = append(path, fs[0].Name())
		node = fs[0]
	}
	leaf, _ := s.Lookup(path...)
	return leaf, nil
}

// recoverParquet turns a panic inside parquet-go (a corrupt file can
// cause one) into an error.
func recoverParquet(err *error) {
	if p := recover(); p != nil {
		*err = serving.Errorf(serving.InvalidArgument, "rowio: corrupt Parquet: %v", p)
	}
}

func (r *parquetReader) Read(f *Frame, n int) (err error) {
	defer recoverParquet(&err)
	f.Reset(r.row)
	bs := newBuilders(f, r.fields)
	defer finish(f, bs)
	if r.flat != nil {
		return r.readFlat(f, bs, n)
	}
	if cap(r.rows) < n {
		r.rows = make([]parquet.Row, n)
	}
	k, err := r.r.ReadRows(r.rows[:n])
	if err != nil && !errors.Is(err, io.EOF) {
		return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet: %w", err)
	}
	for _, row := range r.rows[:k] {
		good := f.Rows - len(f.Bad)
		f.Rows++
		r.row++
		if err := r.decode(row, bs); err != nil {
			f.markBad(bs, good, BadRow{Row: r.row - 1, Err: err})
			continue
		}
		f.markGood(r.row - 1)
	}
	if f.Rows == 0 {
		return io.EOF
	}
	return nil
}

func (r *parquetReader) readFlat(f *Frame, bs []builder, n int) error {
	for f.Rows < n {
		k, err := r.flat.read(n - f.Rows)
		if err != nil {
			return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet: %w", err)
		}
		if k == 0 {
			break
		}
		for j := range k {
			good := f.Rows - len(f.Bad)
			f.Rows++
			r.row++
			if err := r.decodeFlat(j, bs); err != nil {
				f.markBad(bs, good, BadRow{Row: r.row - 1, Err: err})
				continue
			}
			f.markGood(r.row - 1)
		}
	}
	if f.Rows == 0 {
		return io.EOF
	}
	return nil
}

// decodeFlat appends row j of the column buffers.
func (r *parquetReader) decodeFlat(j int, bs []builder) error {
	for i := range bs {
		v := r.flat.bufs[i][j]
		if v.IsNull() {
			return fmt.Errorf("column %q: null", r.fields[i].Name)
		}
		if err := appendParquet(&bs[i], v); err != nil {
			return fmt.Errorf("column %q: %w", r.fields[i].Name, err)
		}
	}
	return nil
}

func (r *parquetReader) decode(row parquet.Row, bs []builder) error {
	clear(r.count)
	for _, v := range row {
		i := r.colField[v.Column()]
		if i < 0 {
			continue
		}
		fl := r.fields[i]
		if v.IsNull() {
			if r.repeated[i] {
				continue // an empty list
			}
			return fmt.Errorf("column %q: null", fl.Name)
		}
		r.count[i]++
		if r.count[i] > fl.width() {
			continue // reported below
		}
		if err := appendParquet(&bs[i], v); err != nil {
			return fmt.Errorf("column %q: %w", fl.Name, err)
		}
	}
	for i, fl := range r.fields {
		if r.count[i] != fl.width() {
			return fmt.Errorf("column %q: %d elements, want %d", fl.Name, r.count[i], fl.width())
		}
	}
	return nil
}

func appendParquet(b *builder, v parquet.Value) error {
	switch v.Kind() {
	case parquet.Boolean:
		return b.appendBool(v.Boolean())
	case parquet.Int32:
		return b.appendInt(int64(v.Int32()))
	case parquet.Int64:
		if b.field.Type == serving.Uint64 {
			*b.data.(*[]uint64) = append(*b.data.(*[]uint64), v.Uint64())
			return nil
		}
		return b.appendInt(v.Int64())
	case parquet.Float:
		return b.appendFloat(float64(v.Float()))
	case parquet.Double:
		return b.appendFloat(v.Double())
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return b.appendBytes(v.ByteArray())
	}
	return fmt.Errorf("unsupported Parquet type %v", v.Kind())
}

func (r *parquetReader) Skip(n int64) (k int64, err error) {
	defer recoverParquet(&err)
	k = min(n, max(0, r.total-r.row))
	if r.flat != nil {
		k, err = r.flat.skip(k)
		r.row += k
		return k, err
	}
	if err := r.r.SeekToRow(r.row + k); err != nil {
		return 0, err
	}
	r.row += k
	return k, nil
}

func (r *parquetReader) Progress() (int64, int64) { return r.row, r.total }

func (r *parquetReader) Close() error {
	var err error
	if r.flat != nil {
		err = r.flat.closeGroup()
	}
	return errors.Join(err, r.r.Close(), closeIf(r.closer))
}

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

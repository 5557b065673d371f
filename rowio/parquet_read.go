package rowio

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/serving"
)

// parquetReader reads the wanted columns of a Parquet file column by
// column, a row group at a time, straight from their pages (one page per
// column in memory, read on demand from the io.ReaderAt), and puts rows
// together itself: parquet-go's row reader rebuilds every column of every
// row, which costs several times what the values do. A vector field reads
// a repeated column, or a LIST of a primitive (the one leaf under the
// field's group).
type parquetReader struct {
	groups   []parquet.RowGroup
	closer   io.Closer
	fields   []Field
	cols     []*colReader // per field
	group    int          // current row group
	groupRow int64        // next row within it
	open     bool         // cols read the current group
	row      int64
	total    int64
}

// colReader reads one column's values, buffered, a row at a time.
type colReader struct {
	col      int  // leaf column index
	repeated bool // a row is a run of values starting at repetition level 0
	vr       parquet.ColumnChunkValueReader
	buf      []parquet.Value
	pos, n   int
	put      func(*builder, parquet.Value) error
	bulk     func(*builder, []parquet.Value) // put of many at once; nil when put converts
}

func newParquetReader(ra io.ReaderAt, size int64, c io.Closer, fields []Field) (r *parquetReader, err error) {
	defer recoverParquet(&err)
	f, err := parquet.OpenFile(ra, size)
	if err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "rowio: not a Parquet file: %w", err)
	}
	s := f.Schema()
	r = &parquetReader{groups: f.RowGroups(), closer: c, fields: fields, total: f.NumRows()}
	for _, fl := range fields {
		leaf, err := leafOf(s, fl.Name)
		if err != nil {
			return nil, err
		}
		put, bulk := putter(fl, leaf.Node.Type().Kind())
		r.cols = append(r.cols, &colReader{col: leaf.ColumnIndex, repeated: leaf.MaxRepetitionLevel > 0,
			buf: make([]parquet.Value, 1024), put: put, bulk: bulk})
	}
	return r, nil
}

// putter picks how a column's values are appended: straight into the
// typed slice when the Parquet type is the field's (bulk does many at
// once), else through the converting appendParquet (bulk is nil).
func putter(f Field, k parquet.Kind) (func(*builder, parquet.Value) error, func(*builder, []parquet.Value)) {
	switch {
	case k == parquet.Float && f.Type == serving.FP32:
		return direct(func(v parquet.Value) float32 { return v.Float() })
	case k == parquet.Double && f.Type == serving.FP64:
		return direct(func(v parquet.Value) float64 { return v.Double() })
	case k == parquet.Int64 && f.Type == serving.Int64:
		return direct(func(v parquet.Value) int64 { return v.Int64() })
	case k == parquet.Int32 && f.Type == serving.Int32:
		return direct(func(v parquet.Value) int32 { return v.Int32() })
	}
	return appendParquet, nil
}

func direct[T any](get func(parquet.Value) T) (func(*builder, parquet.Value) error, func(*builder, []parquet.Value)) {
	return func(b *builder, v parquet.Value) error {
			d := b.data.(*[]T)
			*d = append(*d, get(v))
			return nil
		}, func(b *builder, vs []parquet.Value) {
			d := b.data.(*[]T)
			for _, v := range vs {
				*d = append(*d, get(v))
			}
		}
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

// ready makes the current row group one with rows left, its columns open,
// or says there is none.
func (r *parquetReader) ready() (bool, error) {
	for r.group < len(r.groups) {
		g := r.groups[r.group]
		if r.groupRow < g.NumRows() {
			if !r.open {
				chunks := g.ColumnChunks()
				for _, c := range r.cols {
					c.vr, c.pos, c.n = parquet.NewColumnChunkValueReader(chunks[c.col]), 0, 0
					if r.groupRow > 0 {
						if err := c.vr.SeekToRow(r.groupRow); err != nil {
							return false, err
						}
					}
				}
				r.open = true
			}
			return true, nil
		}
		if err := r.closeGroup(); err != nil {
			return false, err
		}
		r.group, r.groupRow = r.group+1, 0
	}
	return false, nil
}

func (r *parquetReader) closeGroup() error {
	var errs []error
	if r.open {
		for _, c := range r.cols {
			errs = append(errs, c.vr.Close())
			c.vr = nil
		}
	}
	r.open = false
	return errors.Join(errs...)
}

func (r *parquetReader) Read(f *Frame, n int) (err error) {
	defer recoverParquet(&err)
	f.Reset(r.row)
	bs := newBuilders(f, r.fields)
	defer finish(f, bs)
	for f.Rows < n {
		ok, err := r.ready()
		if err != nil {
			return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet: %w", err)
		}
		if !ok {
			break
		}
		if k, err := r.readBulk(f, bs, n-f.Rows); err != nil || k > 0 {
			if err != nil {
				return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet: %w", err)
			}
			continue
		}
		good := f.Rows - len(f.Bad)
		var bad error
		for i, c := range r.cols {
			err := c.row(&bs[i], r.fields[i], bad == nil)
			if errors.Is(err, errColumn) {
				return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet column %q: %w", r.fields[i].Name, err)
			}
			if err != nil && bad == nil {
				bad = err // the other columns still give up this row's values
			}
		}
		f.Rows++
		r.row++
		r.groupRow++
		if bad != nil {
			f.markBad(bs, good, BadRow{Row: r.row - 1, Err: bad})
			continue
		}
		f.markGood(r.row - 1)
	}
	if f.Rows == 0 {
		return io.EOF
	}
	return nil
}

// readBulk appends up to n rows column by column, which is the common
// case and several times cheaper than row by row: when every column is a
// scalar of the field's own type and no value of those rows is null. It
// reads nothing and returns 0 otherwise, and the rows go row by row (from
// the values it buffered).
func (r *parquetReader) readBulk(f *Frame, bs []builder, n int) (int, error) {
	k := int(min(int64(n), r.groups[r.group].NumRows()-r.groupRow, 4096))
	for _, c := range r.cols {
		if c.repeated || c.bulk == nil {
			return 0, nil
		}
	}
	for _, c := range r.cols {
		if err := c.fill(k); err != nil {
			return 0, err
		}
		for _, v := range c.buf[c.pos : c.pos+k] {
			if v.IsNull() {
				return 0, nil
			}
		}
	}
	for i, c := range r.cols {
		c.bulk(&bs[i], c.buf[c.pos:c.pos+k])
		c.pos += k
	}
	for range k {
		f.markGood(r.row)
		f.Rows++
		r.row++
	}
	r.groupRow += int64(k)
	return k, nil
}

// fill makes k values available at c.buf[c.pos:]: the row group has them.
func (c *colReader) fill(k int) error {
	got, err := c.fillUpTo(k)
	if err == nil && got < k {
		err = errColumn
	}
	return err
}

// fillUpTo makes up to k values available at c.buf[c.pos:], fewer only at
// the end of the column chunk, and says how many.
func (c *colReader) fillUpTo(k int) (int, error) {
	if c.n-c.pos >= k {
		return k, nil
	}
	if cap(c.buf) < k {
		buf := make([]parquet.Value, k)
		c.n = copy(buf, c.buf[c.pos:c.n])
		c.buf = buf
	} else {
		c.n = copy(c.buf, c.buf[c.pos:c.n])
	}
	c.buf, c.pos = c.buf[:cap(c.buf)], 0
	for c.n < k {
		m, err := c.vr.ReadValues(c.buf[c.n:])
		c.n += m
		if m == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return c.n, nil
			}
			return c.n, fmt.Errorf("%w: %v", errColumn, err)
		}
	}
	return k, nil
}

// errColumn marks a column that ran out of values before its row group
// did: a broken file, not a bad row.
var errColumn = errors.New("fewer values than rows")

// next returns the column's next value, reading a buffer's worth when
// needed.
func (c *colReader) next() (parquet.Value, error) {
	if c.pos == c.n {
		n, err := c.vr.ReadValues(c.buf)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return parquet.Value{}, errColumn
			}
			return parquet.Value{}, fmt.Errorf("%w: %v", errColumn, err)
		}
		c.pos, c.n = 0, n
	}
	v := c.buf[c.pos]
	c.pos++
	return v, nil
}

// more reports whether the next buffered or readable value continues the
// current row (repetition level above 0).
func (c *colReader) more() (bool, error) {
	if c.pos == c.n {
		n, err := c.vr.ReadValues(c.buf)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				return false, nil // the end of the row group ends the row
			}
			return false, err
		}
		c.pos, c.n = 0, n
	}
	return c.buf[c.pos].RepetitionLevel() > 0, nil
}

// row consumes one row's values and, when keep is set, appends them to b
// (a null is an error; for a repeated column, an empty list). It always
// consumes the whole row, so the columns stay aligned.
func (c *colReader) row(b *builder, f Field, keep bool) error {
	if c.repeated && keep && c.bulk != nil && c.vector(b, f.width()) {
		return nil
	}
	v, err := c.next()
	if err != nil {
		return err
	}
	var bad error
	count := 0
	for {
		switch {
		case v.IsNull():
			if !c.repeated && bad == nil {
				bad = fmt.Errorf("column %q: null", f.Name)
			}
		case keep && bad == nil:
			count++
			if count <= f.width() {
				if err := c.put(b, v); err != nil {
					bad = fmt.Errorf("column %q: %w", f.Name, err)
				}
			}
		}
		if !c.repeated {
			break
		}
		more, err := c.more()
		if err != nil {
			return fmt.Errorf("%w: %v", errColumn, err)
		}
		if !more {
			break
		}
		if v, err = c.next(); err != nil {
			return err
		}
	}
	if bad == nil && keep && count != f.width() {
		bad = fmt.Errorf("column %q: %d elements, want %d", f.Name, count, f.width())
	}
	return bad
}

// vector appends a row of a repeated column at once when it is whole in
// the buffer: w values, the first starting the row, none null, and the
// next value (if any) starting another. Otherwise it takes nothing and
// row goes value by value.
func (c *colReader) vector(b *builder, w int) bool {
	avail, err := c.fillUpTo(w + 1)
	if err != nil || avail < w {
		return false
	}
	vals := c.buf[c.pos : c.pos+w]
	if vals[0].RepetitionLevel() != 0 || (avail > w && c.buf[c.pos+w].RepetitionLevel() != 0) {
		return false
	}
	for i, v := range vals {
		if v.IsNull() || (i > 0 && v.RepetitionLevel() == 0) {
			return false
		}
	}
	c.bulk(b, vals)
	c.pos += w
	return true
}

func appendParquet(b *builder, v parquet.Value) error {
	switch v.Kind() {
	case parquet.Boolean:
		return b.appendBool(v.Boolean())
	case parquet.Int32:
		return b.appendInt(int64(v.Int32()))
	case parquet.Int64:
		if d, ok := b.data.(*[]uint64); ok {
			*d = append(*d, v.Uint64())
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

func (r *parquetReader) Skip(n int64) (done int64, err error) {
	defer recoverParquet(&err)
	for done < n {
		ok, err := r.ready()
		if !ok || err != nil {
			return done, err
		}
		m := min(n-done, r.groups[r.group].NumRows()-r.groupRow)
		r.groupRow += m
		r.row += m
		done += m
		for _, c := range r.cols {
			c.pos, c.n = 0, 0
			if err := c.vr.SeekToRow(r.groupRow); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

func (r *parquetReader) Progress() (int64, int64) { return r.row, r.total }

func (r *parquetReader) Close() error { return errors.Join(r.closeGroup(), closeIf(r.closer)) }

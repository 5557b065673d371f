package rowio

import (
	"errors"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/serving"
)

// parquetReader reads the wanted columns of a Parquet file a row group
// at a time, each column straight from its pages into the frame's typed
// slices (see column): parquet-go's row reader rebuilds every row, and
// its value reader boxes every value, which cost many times what the
// values do. One page per column is in memory, read on demand from the
// io.ReaderAt. A vector field reads a repeated column, or a LIST of a
// primitive (the one leaf under the field's group).
type parquetReader struct {
	groups   []parquet.RowGroup
	closer   io.Closer
	fields   []Field
	cols     []*column // per field
	group    int       // current row group
	groupRow int64     // next row within it
	open     bool      // cols read the current group
	row      int64
	total    int64
	bad      []badAt
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
		col, err := newColumn(fl, leaf)
		if err != nil {
			return nil, err
		}
		r.cols = append(r.cols, col)
	}
	return r, nil
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
					if err := c.open(chunks[c.leaf], r.groupRow); err != nil {
						return false, err
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
	for _, c := range r.cols {
		errs = append(errs, c.close())
	}
	r.open = false
	return errors.Join(errs...)
}

// Read takes the rows column by column, as many at once as the row group
// has left: each column appends them to its slice, with a placeholder for
// a row it cannot take, and those rows are then dropped from every column
// and reported in f.Bad.
func (r *parquetReader) Read(f *Frame, n int) (err error) {
	defer recoverParquet(&err)
	f.Reset(r.row)
	bs := newBuilders(f, r.fields, int(min(int64(n), r.total-r.row)))
	defer finish(f, bs)
	for f.Rows < n {
		ok, err := r.ready()
		if err != nil {
			return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet: %w", err)
		}
		if !ok {
			break
		}
		k := int(min(int64(n-f.Rows), r.groups[r.group].NumRows()-r.groupRow))
		good := f.Rows - len(f.Bad)
		r.bad = r.bad[:0]
		for i, c := range r.cols {
			if err := c.read(&bs[i], k, &r.bad); err != nil {
				return serving.Errorf(serving.InvalidArgument, "rowio: reading Parquet column %q: %w", r.fields[i].Name, err)
			}
		}
		f.takeRows(bs, good, k, r.row, r.bad)
		r.row += int64(k)
		r.groupRow += int64(k)
	}
	if f.Rows == 0 {
		return io.EOF
	}
	return nil
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
			if err := c.seek(r.groupRow); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

func (r *parquetReader) Progress() (int64, int64) { return r.row, r.total }

func (r *parquetReader) Close() error { return errors.Join(r.closeGroup(), closeIf(r.closer)) }

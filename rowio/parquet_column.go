package rowio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/servekit/servekit/serving"
)

// column reads one leaf column of a row group page by page into a frame
// column. parquet-go decodes each page (decompression, dictionary and
// level decoding) into typed buffers; column copies a page's values
// straight into the column's typed slice, many rows at a time, and
// looks at the levels only to find nulls and list boundaries: no value
// is boxed into a parquet.Value. A row that cannot be taken (a null, a
// list of the wrong length, a value out of the field's range) gets a
// placeholder so that every column stays aligned, and is reported to
// the reader, which drops it from all columns.
type column struct {
	field  Field
	leaf   int // leaf column index
	maxRep byte
	maxDef byte
	vals   pageValues

	pages parquet.Pages
	page  parquet.Page
	reps  []byte // of the page; nil when the column is not repeated
	defs  []byte // of the page; nil when the column is required
	n     int    // levels in the page (values, when it has none)
	li    int    // next level
	vi    int    // next value
}

// pageValues holds the values of one page, typed by their Parquet kind,
// and appends them to a builder, converting when the field's type is not
// the page's.
type pageValues interface {
	// load takes the non-null values of p and returns how many there are.
	load(p parquet.Page) (int, error)
	// appendTo appends values [lo, hi) to b. When one does not fit the
	// field, it stops there: the values before it are appended, i is its
	// index and err says why.
	appendTo(b *builder, lo, hi int) (i int, err error)
}

// errColumn marks a column that ran out of values before its row group
// did, or whose levels do not match its values: a broken file, not a bad
// row.
var errColumn = errors.New("broken column")

// badAt is a row a column could not take: its offset in the rows being
// read, and why.
type badAt struct {
	row int
	err error
}

func newColumn(f Field, leaf parquet.LeafColumn) (*column, error) {
	vals, err := valuesFor(f, leaf)
	if err != nil {
		return nil, err
	}
	return &column{field: f, leaf: leaf.ColumnIndex, maxRep: byte(leaf.MaxRepetitionLevel),
		maxDef: byte(leaf.MaxDefinitionLevel), vals: vals}, nil
}

// open starts reading the column's chunk of a row group at row.
func (c *column) open(chunk parquet.ColumnChunk, row int64) error {
	c.release()
	c.pages = chunk.Pages()
	if row > 0 {
		return c.pages.SeekToRow(row)
	}
	return nil
}

// seek moves to row of the open row group.
func (c *column) seek(row int64) error {
	c.release()
	return c.pages.SeekToRow(row)
}

func (c *column) release() {
	if c.page != nil {
		parquet.Release(c.page)
	}
	c.page, c.reps, c.defs, c.n, c.li, c.vi = nil, nil, nil, 0, 0, 0
}

// close ends the row group's chunk.
func (c *column) close() error {
	c.release()
	if c.pages == nil {
		return nil
	}
	err := c.pages.Close()
	c.pages = nil
	return err
}

// next loads the next page; ok is false at the end of the chunk.
func (c *column) next() (ok bool, err error) {
	c.release()
	for {
		p, err := c.pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: %v", errColumn, err)
		}
		nv, err := c.vals.load(p)
		if err != nil {
			parquet.Release(p)
			return false, fmt.Errorf("%w: %v", errColumn, err)
		}
		c.page, c.reps, c.defs, c.n = p, nil, nil, nv
		if c.maxDef > 0 {
			c.defs = p.DefinitionLevels()
			c.n = len(c.defs)
			if got := bytes.Count(c.defs, []byte{c.maxDef}); got != nv {
				return false, fmt.Errorf("%w: a page has %d values for %d defined levels", errColumn, nv, got)
			}
		}
		if c.maxRep > 0 {
			if c.reps = p.RepetitionLevels(); len(c.reps) != c.n {
				return false, fmt.Errorf("%w: a page has %d repetition and %d definition levels", errColumn, len(c.reps), c.n)
			}
		}
		if c.n > 0 {
			return true, nil
		}
		c.release()
	}
}

// read appends the next k rows of the column to b: each row's values, or
// a placeholder of the field's width for a row it reports in bad (its
// offset from the first of the k). An error is about the whole file.
func (c *column) read(b *builder, k int, bad *[]badAt) error {
	for r := 0; r < k; {
		if c.li == c.n {
			ok, err := c.next()
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: fewer values than rows", errColumn)
			}
		}
		var m int
		if c.maxRep == 0 {
			m = c.scalars(b, r, min(k-r, c.n-c.li), bad)
		} else {
			m = c.lists(b, r, k-r, bad)
			if m == 0 {
				if err := c.list(b, r, bad); err != nil {
					return err
				}
				m = 1
			}
		}
		r += m
	}
	return nil
}

// scalars takes m rows of a scalar column from the current page: all at
// once when none is null, else in runs between the nulls.
func (c *column) scalars(b *builder, r, m int, bad *[]badAt) int {
	if c.defs == nil || bytes.Count(c.defs[c.li:c.li+m], []byte{c.maxDef}) == m {
		c.take(b, r, c.vi, c.vi+m, 1, bad)
		c.li += m
		c.vi += m
		return m
	}
	for i := 0; i < m; {
		if c.defs[c.li] != c.maxDef {
			b.pad(1)
			*bad = append(*bad, badAt{r + i, fmt.Errorf("column %q: null", c.field.Name)})
			c.li++
			i++
			continue
		}
		j := i + 1
		for j < m && c.defs[c.li+j-i] == c.maxDef {
			j++
		}
		c.take(b, r+i, c.vi, c.vi+j-i, 1, bad)
		c.vi += j - i
		c.li += j - i
		i = j
	}
	return m
}

// take appends values [lo, hi), rows of w values from row r on; a row
// with a value that does not fit gets a placeholder.
func (c *column) take(b *builder, r, lo, hi, w int, bad *[]badAt) {
	for lo < hi {
		start := b.len()
		i, err := c.vals.appendTo(b, lo, hi)
		if err == nil {
			return
		}
		row := i / w // the row of the value, within this run
		b.setLen(start + row*w)
		b.pad(w)
		*bad = append(*bad, badAt{r + row, fmt.Errorf("column %q: %w", c.field.Name, err)})
		lo += (row + 1) * w
		r += row + 1
	}
}

// runLevels bounds the levels lists checks at once, so that a file with
// bad rows close together costs a constant per row, not a page per row.
const runLevels = 4096

// lists takes up to m whole rows of a list column at once from the
// current page: rows of exactly the field's width, no null, each
// followed in the page by the start of the next row (a row that ends at
// the page's end may go on in the next page). It returns how many it
// took, 0 when the next row must go through list.
func (c *column) lists(b *builder, r, m int, bad *[]badAt) int {
	w := c.field.width()
	m = min(m, (c.n-c.li-1)/w, max(1, runLevels/w))
	if m <= 0 {
		return 0
	}
	if !c.whole(c.li, m, w) {
		p := 0
		for p < m && c.whole(c.li+p*w, 1, w) {
			p++
		}
		if m = p; m == 0 {
			return 0
		}
	}
	c.take(b, r, c.vi, c.vi+m*w, w, bad)
	c.li += m * w
	c.vi += m * w
	return m
}

// whole reports whether the m rows of w levels from level i are whole:
// each starts a row (repetition level 0) and holds w values, none null,
// and the level after them starts the next row. bytes.Count runs many
// levels an instruction.
func (c *column) whole(i, m, w int) bool {
	span := m * w
	reps := c.reps[i : i+span+1]
	if reps[span] != 0 || bytes.Count(c.defs[i:i+span], []byte{c.maxDef}) != span || bytes.Count(reps[:span], []byte{0}) != m {
		return false
	}
	for j := 0; j < span; j += w {
		if reps[j] != 0 {
			return false
		}
	}
	return true
}

// list takes one row of a list column value by value, across pages.
func (c *column) list(b *builder, r int, bad *[]badAt) error {
	w := c.field.width()
	start := b.len()
	if c.reps[c.li] != 0 {
		return fmt.Errorf("%w: a row starts inside a list", errColumn)
	}
	count, nulls := 0, 0
	var why error
	for first := true; ; first = false {
		if c.li == c.n {
			ok, err := c.next()
			if err != nil {
				return err
			}
			if !ok {
				break // the end of the chunk ends the row
			}
		}
		if !first && c.reps[c.li] == 0 {
			break
		}
		if c.defs[c.li] == c.maxDef {
			if why == nil && count < w {
				if _, err := c.vals.appendTo(b, c.vi, c.vi+1); err != nil {
					why = err
				}
			}
			count++
			c.vi++
		} else {
			nulls++
		}
		c.li++
	}
	switch {
	case why != nil:
	case count > 0 && nulls > 0:
		why = errors.New("a null in the list")
	case count != w:
		why = fmt.Errorf("%d elements, want %d", count, w)
	}
	if why != nil {
		b.setLen(start)
		b.pad(w)
		*bad = append(*bad, badAt{r, fmt.Errorf("column %q: %w", c.field.Name, why)})
	}
	return nil
}

// valuesFor picks the typed values for a field read from a leaf: by the
// leaf's physical type, with its logical type deciding the sign of
// integers and the unit of timestamps.
func valuesFor(f Field, leaf parquet.LeafColumn) (pageValues, error) {
	typ := leaf.Node.Type()
	unsigned, unit := logicalOf(typ)
	switch k := typ.Kind(); k {
	case parquet.Float:
		return newTyped(f, (*encoding.Values).Float, putFloat32, serving.FP32), nil
	case parquet.Double:
		return newTyped(f, (*encoding.Values).Double, putFloat64, serving.FP64), nil
	case parquet.Int32:
		if unsigned {
			return newTyped(f, (*encoding.Values).Uint32, putUint32, serving.Uint32), nil
		}
		return newTyped(f, (*encoding.Values).Int32, putInt32, serving.Int32), nil
	case parquet.Int64:
		switch {
		case unsigned:
			return newTyped(f, (*encoding.Values).Uint64, putUint64, serving.Uint64), nil
		case f.Timestamp && unit != 0 && unit != 1e3:
			return newTyped(f, (*encoding.Values).Int64, putTime(unit), serving.InvalidType), nil
		}
		return newTyped(f, (*encoding.Values).Int64, putInt64, serving.Int64), nil
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return &byteValues{field: f}, nil
	case parquet.Boolean:
		return &boolValues{typed: typed[bool]{field: f, put: (*builder).appendBool, direct: f.Type == serving.Bool}}, nil
	default:
		return nil, serving.Errorf(serving.InvalidArgument, "rowio: Parquet column %q is %v: not a type rowio reads", f.Name, k)
	}
}

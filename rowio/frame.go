package rowio

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"

	"github.com/servekit/servekit/serving"
)

// Field describes one column: its name, element type, and how many
// elements each row holds.
type Field struct {
	Name string
	// Type is the element type. A key column is usually serving.Bytes
	// (text), serving.Int64, serving.FP64 or serving.Bool.
	Type serving.DataType
	// Width is the number of elements per row: 0 or 1 is a scalar column;
	// more is a fixed-length vector, a list in JSONL and Parquet and the
	// columns name_0 … name_{Width-1} in CSV.
	Width int
	// Timestamp marks an Int64 column of microseconds since the Unix epoch
	// (UTC): Parquet TIMESTAMP(MICROS), RFC 3339 text in JSONL and CSV.
	Timestamp bool
}

// width is Width with 0 read as 1.
func (f Field) width() int { return max(1, f.Width) }

// Col is a column of a Frame: its Field and the elements of every row,
// row after row, as a typed slice ([]float32, []int64, [][]byte, …, the
// types serving.Tensor holds) of Len × width elements.
type Col struct {
	Field
	Data any
}

// Len is the number of rows in c.
func (c Col) Len() int { return dataLen(c.Data) / c.width() }

// Frame is a block of rows held in columns: what Readers fill and Writers
// take. Cols hold only the rows that decoded; Bad lists those that did not.
type Frame struct {
	// Start is the input row number (from 0) of the first row read into
	// the frame; Rows is how many input rows it covers, good and bad.
	Start int64
	Rows  int
	// Cols hold the good rows, in input order.
	Cols []Col
	// Bad are the rows that could not be decoded, in input order.
	Bad []BadRow
	// index[i] is the input row number of good row i; nil while no row
	// was bad, when good row i is row Start+i.
	index []int64
}

// BadRow is an input row that could not be decoded, with what is known
// of it: a dead-letter record.
type BadRow struct {
	// Row is the input row number, from 0.
	Row int64
	// Line is the 1-based line of a JSONL or CSV row (0 for Parquet).
	Line int64
	// Raw is the row as read: the line of a JSONL row, the record of a
	// CSV row re-encoded as CSV, nil for Parquet.
	Raw []byte
	// Err says why.
	Err error
}

// Len is the number of good rows.
func (f *Frame) Len() int {
	if len(f.Cols) == 0 {
		return f.Rows - len(f.Bad)
	}
	return f.Cols[0].Len()
}

// RowNumber returns the input row number of good row i.
func (f *Frame) RowNumber(i int) int64 {
	if f.index == nil {
		return f.Start + int64(i)
	}
	return f.index[i]
}

// Col returns the column with the given name.
func (f *Frame) Col(name string) (Col, bool) {
	for _, c := range f.Cols {
		if c.Name == name {
			return c, true
		}
	}
	return Col{}, false
}

// Reset empties f for reuse, keeping the columns' capacity.
func (f *Frame) Reset(start int64) {
	f.Start, f.Rows, f.Bad, f.index = start, 0, f.Bad[:0], nil
	for i := range f.Cols {
		f.Cols[i].Data = truncData(f.Cols[i].Data, 0)
	}
}

// Fields returns the fields of f's columns.
func (f *Frame) Fields() []Field {
	fs := make([]Field, len(f.Cols))
	for i, c := range f.Cols {
		fs[i] = c.Field
	}
	return fs
}

// Slice returns good rows [lo, hi) of f as a frame sharing its data.
func (f *Frame) Slice(lo, hi int) *Frame {
	g := &Frame{Start: f.RowNumber(lo), Rows: hi - lo, Cols: make([]Col, len(f.Cols))}
	for i, c := range f.Cols {
		w := c.width()
		g.Cols[i] = Col{Field: c.Field, Data: sliceOf(c.Data, lo*w, hi*w)}
	}
	if f.index != nil {
		g.index = f.index[lo:hi]
	}
	return g
}

// builder appends decoded values to a frame's columns; one per column
// while a reader fills a frame. A row is appended element by element and
// dropped whole (truncate) when any of its values fails.
type builder struct {
	field Field
	// data points to the column's typed slice (*[]float32, …), so that an
	// append stores a slice header and boxes nothing into an interface.
	data any
}

func (b *builder) slice() any { return derefData(b.data) }

func (b *builder) truncate(rows int) { setData(b.data, truncData(b.slice(), rows*b.field.width())) }

// len is the number of elements appended (rows × width).
func (b *builder) len() int { return reflect.ValueOf(b.data).Elem().Len() }

// setLen cuts the elements to n ≤ len.
func (b *builder) setLen(n int) { reflect.ValueOf(b.data).Elem().SetLen(n) }

// pad appends n zero elements: the placeholder of a row being dropped.
func (b *builder) pad(n int) {
	v := reflect.ValueOf(b.data).Elem()
	v.Set(reflect.AppendSlice(v, reflect.MakeSlice(v.Type(), n, n)))
}

// dropRows removes rows from+bad[i].row (bad sorted by row, no row
// twice), moving the rows after them down.
func (b *builder) dropRows(from int, bad []badAt) {
	v := reflect.ValueOf(b.data).Elem()
	w := b.field.width()
	rows := v.Len() / w
	to := from + bad[0].row
	for j, x := range bad {
		lo, hi := from+x.row+1, rows
		if j+1 < len(bad) {
			hi = from + bad[j+1].row
		}
		reflect.Copy(v.Slice(to*w, (to+hi-lo)*w), v.Slice(lo*w, hi*w))
		to += hi - lo
	}
	v.SetLen(to * w)
}

// parseText appends s, the text of one element (CSV, a JSON number's
// digits), parsed for the column's type.
func (b *builder) parseText(s string) error {
	switch b.field.Type {
	case serving.Bytes:
		*b.data.(*[][]byte) = append(*b.data.(*[][]byte), []byte(s))
		return nil
	case serving.Bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		*b.data.(*[]bool) = append(*b.data.(*[]bool), v)
		return nil
	case serving.FP16, serving.BF16, serving.FP32, serving.FP64:
		if b.field.Timestamp {
			break
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		return b.appendFloat(v)
	}
	if b.field.Timestamp {
		return b.parseTime(s)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return b.appendInt(v)
	}
	if b.field.Type == serving.Uint64 {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			*b.data.(*[]uint64) = append(*b.data.(*[]uint64), v)
			return nil
		}
	}
	// 3.0 or 1e3 are whole numbers too; appendFloat checks.
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return b.appendFloat(v)
	}
	return fmt.Errorf("%q is not an integer", s)
}

// appendFloat appends v, which must be whole and in range for an integer
// column.
func (b *builder) appendFloat(v float64) error {
	switch d := b.data.(type) { // pointers to the slices: appending boxes nothing
	case *[]float32:
		if f := float32(v); math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
			return fmt.Errorf("%v overflows FP32", v)
		}
		*d = append(*d, float32(v))
		return nil
	case *[]float64:
		*d = append(*d, v)
		return nil
	case *[]uint16:
		switch b.field.Type {
		case serving.FP16:
			*d = append(*d, serving.Float32ToFP16(float32(v)))
			return nil
		case serving.BF16:
			*d = append(*d, serving.Float32ToBF16(float32(v)))
			return nil
		}
	case *[]bool:
		return fmt.Errorf("%v is not a boolean", v)
	case *[][]byte:
		*d = append(*d, strconv.AppendFloat(nil, v, 'g', -1, 64))
		return nil
	}
	if v != math.Trunc(v) || math.IsInf(v, 0) || v < -(1<<63) || v >= 1<<64 {
		return fmt.Errorf("%v is not a %v integer", v, b.field.Type)
	}
	if v >= 1<<63 {
		if d, ok := b.data.(*[]uint64); ok {
			*d = append(*d, uint64(v))
			return nil
		}
		return fmt.Errorf("%v overflows %v", v, b.field.Type)
	}
	return b.appendInt(int64(v))
}

// appendInt appends v, checked against the column's range.
func (b *builder) appendInt(v int64) error {
	var ok bool
	switch d := b.data.(type) { // pointers to the slices: appending boxes nothing
	case *[]int64:
		*d, ok = append(*d, v), true
	case *[]int32:
		ok = appendInRange(d, v, math.MinInt32, math.MaxInt32)
	case *[]int16:
		ok = appendInRange(d, v, math.MinInt16, math.MaxInt16)
	case *[]int8:
		ok = appendInRange(d, v, math.MinInt8, math.MaxInt8)
	case *[]uint64:
		ok = appendInRange(d, v, 0, math.MaxInt64)
	case *[]uint32:
		ok = appendInRange(d, v, 0, math.MaxUint32)
	case *[]uint8:
		ok = appendInRange(d, v, 0, math.MaxUint8)
	case *[]uint16:
		if b.field.Type == serving.Uint16 {
			ok = appendInRange(d, v, 0, math.MaxUint16)
		} else {
			return b.appendFloat(float64(v))
		}
	case *[]float32, *[]float64:
		return b.appendFloat(float64(v))
	case *[][]byte:
		*d, ok = append(*d, strconv.AppendInt(nil, v, 10)), true
	case *[]bool:
		if v == 0 || v == 1 {
			*d, ok = append(*d, v == 1), true
		}
	}
	if !ok {
		return fmt.Errorf("%d out of range for %v", v, b.field.Type)
	}
	return nil
}

func appendInRange[T int8 | int16 | int32 | uint8 | uint16 | uint32 | uint64](d *[]T, v, lo, hi int64) bool {
	if v < lo || v > hi {
		return false
	}
	*d = append(*d, T(v))
	return true
}

func (b *builder) appendBool(v bool) error {
	switch d := b.data.(type) { // pointers to the slices: appending boxes nothing
	case *[]bool:
		*d = append(*d, v)
		return nil
	case *[][]byte:
		*d = append(*d, strconv.AppendBool(nil, v))
		return nil
	}
	return fmt.Errorf("%v is not a %v", v, b.field.Type)
}

// appendBytes appends a string value; a number column parses it, so that
// "1.5" in a JSON string or a Parquet text column still reads as 1.5.
func (b *builder) appendBytes(v []byte) error {
	if d, ok := b.data.(*[][]byte); ok {
		*d = append(*d, append([]byte(nil), v...))
		return nil
	}
	return b.parseText(string(v))
}

// newBuilders makes one builder per field, reusing the frame's slices
// when they hold rows rows (the caller's n, capped), else making them so,
// once, rather than growing them by appends.
func newBuilders(f *Frame, fields []Field, rows int) []builder {
	if len(f.Cols) != len(fields) {
		f.Cols = make([]Col, len(fields))
	}
	rows = min(max(rows, 16), maxPrealloc)
	bs := make([]builder, len(fields))
	for i, fl := range fields {
		if f.Cols[i].Field != fl || f.Cols[i].Data == nil || dataCap(f.Cols[i].Data) < rows*fl.width() {
			f.Cols[i] = Col{Field: fl, Data: makeData(fl.Type, 0, rows*fl.width())}
		}
		bs[i] = builder{field: fl, data: pointerTo(truncData(f.Cols[i].Data, 0))}
	}
	return bs
}

// maxPrealloc caps the rows a reader makes room for before it has them:
// past it, the slices grow as rows come.
const maxPrealloc = 16 << 10

// finish moves the builders' data into the frame.
func finish(f *Frame, bs []builder) {
	for i := range bs {
		f.Cols[i].Data = bs[i].slice()
	}
}

// markBad records row (its number, line, raw text) as bad and drops what
// of it was appended, leaving every builder at good rows.
func (f *Frame) markBad(bs []builder, good int, row BadRow) {
	for i := range bs {
		bs[i].truncate(good)
	}
	if f.index == nil {
		f.index = make([]int64, good, cap(f.Bad)+good+16)
		for i := range f.index {
			f.index[i] = f.Start + int64(i)
		}
	}
	f.Bad = append(f.Bad, row)
}

// takeRows records k rows that the builders hold from good row good on,
// input rows first to first+k-1, dropping from every column the rows in
// bad (offsets in the k, in column order), which become f.Bad.
func (f *Frame) takeRows(bs []builder, good, k int, first int64, bad []badAt) {
	f.Rows += k
	if len(bad) == 0 {
		if f.index != nil {
			for i := range k {
				f.index = append(f.index, first+int64(i))
			}
		}
		return
	}
	slices.SortStableFunc(bad, func(a, b badAt) int { return cmp.Compare(a.row, b.row) })
	bad = slices.CompactFunc(bad, func(a, b badAt) bool { return a.row == b.row }) // a row's first reason stays
	for i := range bs {
		bs[i].dropRows(good, bad)
	}
	if f.index == nil {
		f.index = make([]int64, good, good+k)
		for i := range f.index {
			f.index[i] = f.Start + int64(i)
		}
	}
	j := 0
	for r := range k {
		if j < len(bad) && bad[j].row == r {
			f.Bad = append(f.Bad, BadRow{Row: first + int64(r), Err: bad[j].err})
			j++
			continue
		}
		f.index = append(f.index, first+int64(r))
	}
}

// markGood records good row number row, once an index is kept.
func (f *Frame) markGood(row int64) {
	if f.index != nil {
		f.index = append(f.index, row)
	}
}

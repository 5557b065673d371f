package rowio

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/servekit/servekit/serving"
)

// csvReader reads a CSV file with a header row. A vector field v of width
// k reads the columns v_0 … v_{k-1}. Every record must have as many fields
// as the header.
type csvReader struct {
	cr     *countingReader
	br     *bufio.Reader
	r      *csv.Reader
	size   int64
	closer io.Closer
	fields []Field
	cols   [][]int // per field, the record index of each element
	row    int64
	raw    bytes.Buffer
	rawW   *csv.Writer
}

func newCSVReader(r io.Reader, size int64, c io.Closer, fields []Field) (*csvReader, error) {
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	x := &csvReader{cr: cr, br: br, r: csv.NewReader(br), size: size, closer: c, fields: fields}
	x.r.ReuseRecord = true
	x.rawW = csv.NewWriter(&x.raw)
	header, err := x.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, serving.Errorf(serving.InvalidArgument, "rowio: CSV is empty: want a header row")
		}
		return nil, serving.Errorf(serving.InvalidArgument, "rowio: CSV header: %w", err)
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte-order mark from spreadsheets
	}
	at := make(map[string]int, len(header))
	for i, h := range header {
		at[h] = i
	}
	for _, f := range fields {
		var idx []int
		for _, name := range csvNames(f) {
			i, ok := at[name]
			if !ok {
				return nil, serving.Errorf(serving.InvalidArgument, "rowio: CSV has no column %q (columns: %s)", name, strings.Join(header, ", "))
			}
			idx = append(idx, i)
		}
		x.cols = append(x.cols, idx)
	}
	return x, nil
}

// csvNames are the header names of a field: its name, or name_i for each
// element of a vector.
func csvNames(f Field) []string {
	if f.Width <= 1 {
		return []string{f.Name}
	}
	names := make([]string, f.Width)
	for i := range names {
		names[i] = f.Name + "_" + strconv.Itoa(i)
	}
	return names
}

func (x *csvReader) Read(f *Frame, n int) error {
	f.Reset(x.row)
	bs := newBuilders(f, x.fields, n)
	defer finish(f, bs)
	for f.Rows < n {
		rec, err := x.r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var perr *csv.ParseError
		if err != nil && !errors.As(err, &perr) {
			return err
		}
		good := f.Rows - len(f.Bad)
		f.Rows++
		x.row++
		var line int
		if err == nil {
			line, _ = x.r.FieldPos(0)
			err = x.decode(rec, bs)
		}
		if err != nil {
			bad := BadRow{Row: x.row - 1, Line: int64(line), Err: err}
			if perr != nil {
				bad.Line, bad.Err = int64(perr.StartLine), perr.Err
				if len(rec) > 0 {
					bad.Raw = x.encode(rec)
				}
			} else {
				bad.Raw = x.encode(rec)
			}
			f.markBad(bs, good, bad)
			continue
		}
		f.markGood(x.row - 1)
	}
	if f.Rows == 0 {
		return io.EOF
	}
	return nil
}

func (x *csvReader) decode(rec []string, bs []builder) error {
	for i, idx := range x.cols {
		for _, j := range idx {
			if err := bs[i].parseText(rec[j]); err != nil {
				return fmt.Errorf("column %q: %w", csvNames(x.fields[i])[slices.Index(idx, j)], err)
			}
		}
	}
	return nil
}

// encode renders a record as one CSV line, for a dead-letter record.
func (x *csvReader) encode(rec []string) []byte {
	x.raw.Reset()
	_ = x.rawW.Write(rec) // into a bytes.Buffer: cannot fail
	x.rawW.Flush()
	return bytes.TrimRight(slices.Clone(x.raw.Bytes()), "\r\n")
}

func (x *csvReader) Skip(n int64) (int64, error) {
	var k int64
	for ; k < n; k++ {
		_, err := x.r.Read()
		var perr *csv.ParseError
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.As(err, &perr) {
			return k, err
		}
		x.row++
	}
	return k, nil
}

func (x *csvReader) Progress() (int64, int64) { return x.cr.n - int64(x.br.Buffered()), x.size }

func (x *csvReader) Close() error { return closeIf(x.closer) }

// csvWriter writes a header row, then one record per row: vectors as the
// columns name_0 …, timestamps as RFC 3339 in UTC, floats in the shortest
// form that reads back exactly.
type csvWriter struct {
	w      *csv.Writer
	fields []Field
	rec    []string
	buf    []byte
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

func (w *csvWriter) Write(f *Frame) error {
	first := w.fields == nil
	if err := checkFields(&w.fields, f); err != nil {
		return err
	}
	if first {
		var header []string
		for _, fl := range w.fields {
			header = append(header, csvNames(fl)...)
		}
		if err := w.w.Write(header); err != nil {
			return err
		}
	}
	for r := range f.Len() {
		w.rec = w.rec[:0]
		for _, c := range f.Cols {
			wd := c.width()
			for j := range wd {
				w.buf = appendText(w.buf[:0], c, r*wd+j)
				w.rec = append(w.rec, string(w.buf))
			}
		}
		if err := w.w.Write(w.rec); err != nil {
			return err
		}
	}
	return w.w.Error()
}

func (w *csvWriter) Close() error { return w.Flush() }

// Flush writes the buffered rows to the io.Writer (see Flusher).
func (w *csvWriter) Flush() error {
	w.w.Flush()
	return w.w.Error()
}

// appendText renders element i of c as CSV text.
func appendText(b []byte, c Col, i int) []byte {
	switch d := c.Data.(type) {
	case [][]byte:
		return append(b, d[i]...)
	case []int64:
		if c.Timestamp {
			return time.UnixMicro(d[i]).UTC().AppendFormat(b, time.RFC3339Nano)
		}
	case []float32:
		return strconv.AppendFloat(b, float64(d[i]), 'g', -1, 32)
	case []float64:
		return strconv.AppendFloat(b, d[i], 'g', -1, 64)
	}
	return appendJSONValue(b, c, i)
}

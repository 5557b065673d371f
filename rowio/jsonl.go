package rowio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
)

// MaxLineBytes bounds one JSONL line (or CSV record), so a file without
// newlines cannot take all memory: a longer line is a bad row.
const MaxLineBytes = 16 << 20

// jsonlReader reads one JSON object per line. Blank lines are not rows.
type jsonlReader struct {
	br     *bufio.Reader
	cr     *countingReader
	size   int64
	closer io.Closer
	fields []Field
	line   int64 // lines read
	row    int64 // rows read (non-blank lines)
	obj    map[string]json.RawMessage
	elems  []json.RawMessage
}

func newJSONLReader(r io.Reader, size int64, c io.Closer, fields []Field) *jsonlReader {
	cr := &countingReader{r: r}
	return &jsonlReader{br: bufio.NewReaderSize(cr, 64<<10), cr: cr, size: size, closer: c, fields: fields}
}

// next returns the next non-blank line (without its newline), or io.EOF.
// A line over MaxLineBytes comes back with errLong, its text cut.
func (r *jsonlReader) next() ([]byte, error) {
	for {
		line, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.br.ReadSlice('\n')
				if len(long) < MaxLineBytes {
					long = append(long, line...)
				}
			}
			line = long
			if len(long) >= MaxLineBytes {
				r.line++
				return long[:256], errLong
			}
		}
		if len(line) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, err
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		r.line++
		if t := bytes.TrimSpace(line); len(t) > 0 {
			return t, nil
		}
	}
}

var errLong = fmt.Errorf("line longer than %d bytes", MaxLineBytes)

func (r *jsonlReader) Read(f *Frame, n int) error {
	f.Reset(r.row)
	bs := newBuilders(f, r.fields, n)
	defer finish(f, bs)
	for f.Rows < n {
		line, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		good := f.Rows - len(f.Bad)
		f.Rows++
		r.row++
		if err == nil {
			err = r.decode(line, bs)
		} else if !errors.Is(err, errLong) {
			return err
		}
		if err != nil {
			f.markBad(bs, good, BadRow{Row: r.row - 1, Line: r.line, Raw: append([]byte(nil), line...), Err: err})
			continue
		}
		f.markGood(r.row - 1)
	}
	if f.Rows == 0 {
		return io.EOF
	}
	return nil
}

func (r *jsonlReader) decode(line []byte, bs []builder) error {
	clear(r.obj)
	if r.obj == nil {
		r.obj = make(map[string]json.RawMessage, len(r.fields))
	}
	if err := json.Unmarshal(line, &r.obj); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	for i, fl := range r.fields {
		v, ok := r.obj[fl.Name]
		if !ok {
			return fmt.Errorf("missing field %q", fl.Name)
		}
		if err := r.value(&bs[i], v); err != nil {
			return fmt.Errorf("field %q: %w", fl.Name, err)
		}
	}
	return nil
}

// value appends one field's value: a scalar, or a list of Width elements.
func (r *jsonlReader) value(b *builder, v json.RawMessage) error {
	w := b.field.width()
	if len(v) > 0 && v[0] == '[' {
		r.elems = r.elems[:0]
		if err := json.Unmarshal(v, &r.elems); err != nil {
			return err
		}
		if len(r.elems) != w {
			return fmt.Errorf("list of %d elements, want %d", len(r.elems), w)
		}
		for _, e := range r.elems {
			if err := scalar(b, e); err != nil {
				return err
			}
		}
		return nil
	}
	if w != 1 {
		return fmt.Errorf("want a list of %d elements", w)
	}
	return scalar(b, v)
}

// scalar appends one JSON scalar, already known to be valid JSON.
func scalar(b *builder, v json.RawMessage) error {
	switch {
	case len(v) == 0:
		return errors.New("empty value")
	case v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		if b.field.Timestamp {
			return b.parseTime(s)
		}
		return b.appendBytes([]byte(s))
	case v[0] == 't' || v[0] == 'f':
		return b.appendBool(v[0] == 't')
	case v[0] == 'n':
		return errors.New("null")
	case v[0] == '{' || v[0] == '[':
		return fmt.Errorf("nested value %.32s", v)
	}
	return b.parseText(string(v))
}

func (r *jsonlReader) Skip(n int64) (int64, error) {
	var k int64
	for ; k < n; k++ {
		if _, err := r.next(); err != nil && !errors.Is(err, errLong) {
			if errors.Is(err, io.EOF) {
				break
			}
			return k, err
		}
		r.row++
	}
	return k, nil
}

func (r *jsonlReader) Progress() (int64, int64) {
	return r.cr.n - int64(r.br.Buffered()), r.size
}

func (r *jsonlReader) Close() error { return closeIf(r.closer) }

// jsonlWriter writes one object per row, fields in frame order. Vectors
// are JSON arrays; NaN and ±Inf, which JSON cannot hold, are null;
// timestamps are RFC 3339 strings in UTC.
type jsonlWriter struct {
	w      *bufio.Writer
	fields []Field
	buf    []byte
}

func newJSONLWriter(w io.Writer) *jsonlWriter { return &jsonlWriter{w: bufio.NewWriterSize(w, 64<<10)} }

func (w *jsonlWriter) Write(f *Frame) error {
	if err := checkFields(&w.fields, f); err != nil {
		return err
	}
	for r := range f.Len() {
		b := append(w.buf[:0], '{')
		for i, c := range f.Cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c.Name)
			b = append(b, ':')
			wd := c.width()
			if c.Width > 1 {
				b = append(b, '[')
			}
			for j := range wd {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONValue(b, c, r*wd+j)
			}
			if c.Width > 1 {
				b = append(b, ']')
			}
		}
		b = append(b, '}', '\n')
		w.buf = b
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (w *jsonlWriter) Close() error { return w.w.Flush() }

// Flush writes the buffered rows to the io.Writer (see Flusher).
func (w *jsonlWriter) Flush() error { return w.w.Flush() }

// checkFields fixes the writer's fields at the first frame and checks
// later ones against them.
func checkFields(fields *[]Field, f *Frame) error {
	if *fields == nil {
		*fields = f.Fields()
		return nil
	}
	got := f.Fields()
	if len(got) != len(*fields) {
		return serving.Errorf(serving.InvalidArgument, "rowio: frame has %d columns, the output %d", len(got), len(*fields))
	}
	for i := range got {
		if got[i] != (*fields)[i] {
			return serving.Errorf(serving.InvalidArgument, "rowio: column %d is %s %s, the output's %s %s",
				i, got[i].Name, describe(got[i]), (*fields)[i].Name, describe((*fields)[i]))
		}
	}
	return nil
}

func appendJSONValue(b []byte, c Col, i int) []byte {
	switch d := c.Data.(type) {
	case [][]byte:
		return appendJSONString(b, string(d[i]))
	case []bool:
		return strconv.AppendBool(b, d[i])
	case []float32:
		return appendJSONFloat(b, float64(d[i]), 32)
	case []float64:
		return appendJSONFloat(b, d[i], 64)
	case []int64:
		if c.Timestamp {
			b = append(b, '"')
			b = time.UnixMicro(d[i]).UTC().AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		}
		return strconv.AppendInt(b, d[i], 10)
	case []uint64:
		return strconv.AppendUint(b, d[i], 10)
	}
	if c.Type == serving.FP16 || c.Type == serving.BF16 {
		v, _ := float64At(c, i)
		return appendJSONFloat(b, v, 32)
	}
	v, _ := float64At(c, i) // the other integer types fit a float64 exactly
	return strconv.AppendInt(b, int64(v), 10)
}

func appendJSONFloat(b []byte, v float64, bits int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, bits)
}

// appendJSONString quotes s as JSON does: control characters escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

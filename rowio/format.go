package rowio

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/servekit/servekit/serving"
)

// Format is a file format of rows.
type Format uint8

// The formats. JSONL is one JSON object per line; CSV has a header row;
// Parquet is read and written with github.com/parquet-go/parquet-go.
const (
	JSONL Format = iota + 1
	CSV
	Parquet
)

var formatNames = map[Format]string{JSONL: "jsonl", CSV: "csv", Parquet: "parquet"}

// String returns the format's name: "jsonl", "csv" or "parquet".
func (f Format) String() string {
	if s, ok := formatNames[f]; ok {
		return s
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// Ext is the file extension, with the dot.
func (f Format) Ext() string { return "." + f.String() }

// ParseFormat reads a format name: jsonl (or ndjson, json), csv, parquet.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimPrefix(s, ".")) {
	case "jsonl", "ndjson", "json":
		return JSONL, nil
	case "csv":
		return CSV, nil
	case "parquet", "pq":
		return Parquet, nil
	}
	return 0, serving.Errorf(serving.InvalidArgument, "rowio: unknown format %q (jsonl, csv or parquet)", s)
}

// FormatOf tells a file's format by its extension.
func FormatOf(path string) (Format, error) {
	f, err := ParseFormat(filepath.Ext(path))
	if err != nil {
		return 0, serving.Errorf(serving.InvalidArgument, "rowio: %s: cannot tell the format from the extension: name it", path)
	}
	return f, nil
}

// Reader reads rows a frame at a time. It is not safe for concurrent use.
type Reader interface {
	// Read reads up to n rows into f, which it resets first: the good rows
	// into f.Cols (the reader's fields, in order), the rest into f.Bad. It
	// returns io.EOF, with an empty frame, when no row is left; any other
	// error is about the whole input (unreadable, a column missing).
	Read(f *Frame, n int) error
	// Skip passes over up to n rows without decoding them and says how
	// many it passed (fewer only at the end).
	Skip(n int64) (int64, error)
	// Progress says how far the reader is: done of total, in bytes for
	// JSONL and CSV, rows for Parquet; total is 0 when unknown.
	Progress() (done, total int64)
	// Close releases the input.
	Close() error
}

// Writer writes frames as rows. The first frame fixes the columns; later
// frames must have the same fields. It is not safe for concurrent use.
type Writer interface {
	Write(f *Frame) error
	// Close finishes the output (Parquet's footer) and flushes it; it does
	// not close the io.Writer it was given.
	Close() error
}

// Flusher is implemented by the JSONL and CSV Writers: Flush writes the
// rows they buffer to their io.Writer, whole, so that what was written so
// far is a valid file up to its last row (what a crash-safe log needs). A
// Parquet Writer has no Flush: its file is readable only once Close has
// written the footer.
type Flusher interface {
	Flush() error
}

// Open opens the file at path in the given format (0: by extension) to
// read the given fields.
func Open(path string, format Format, fields []Field) (Reader, error) {
	if format == 0 {
		var err error
		if format, err = FormatOf(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, serving.NewError(serving.NotFound, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	var r Reader
	switch format {
	case JSONL:
		r = newJSONLReader(f, st.Size(), f, fields)
	case CSV:
		r, err = newCSVReader(f, st.Size(), f, fields)
	case Parquet:
		r, err = newParquetReader(f, st.Size(), f, fields)
	default:
		err = serving.Errorf(serving.InvalidArgument, "rowio: unknown format %v", format)
	}
	if err != nil {
		f.Close()
		return nil, wrapPath(path, err)
	}
	return r, nil
}

// NewReader reads rows of the given format from r; Parquet needs an
// io.ReaderAt and its size (an *os.File, a *bytes.Reader), others any
// io.Reader (size, when known, feeds Progress).
func NewReader(format Format, r io.Reader, size int64, fields []Field) (Reader, error) {
	switch format {
	case JSONL:
		return newJSONLReader(r, size, nil, fields), nil
	case CSV:
		return newCSVReader(r, size, nil, fields)
	case Parquet:
		ra, ok := r.(io.ReaderAt)
		if !ok {
			return nil, serving.Errorf(serving.InvalidArgument, "rowio: Parquet needs an io.ReaderAt, got %T", r)
		}
		return newParquetReader(ra, size, nil, fields)
	}
	return nil, serving.Errorf(serving.InvalidArgument, "rowio: unknown format %v", format)
}

// NewWriter writes rows of the given format to w.
func NewWriter(format Format, w io.Writer) (Writer, error) {
	switch format {
	case JSONL:
		return newJSONLWriter(w), nil
	case CSV:
		return newCSVWriter(w), nil
	case Parquet:
		return newParquetWriter(w), nil
	}
	return nil, serving.Errorf(serving.InvalidArgument, "rowio: unknown format %v", format)
}

func wrapPath(path string, err error) error {
	return serving.Errorf(serving.CodeOf(err), "%s: %w", path, err)
}

// countingReader counts the bytes read through it, for Progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func closeIf(c io.Closer) error {
	if c == nil {
		return nil
	}
	return c.Close()
}

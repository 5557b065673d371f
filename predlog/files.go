package predlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// Columns a logged row has besides the model's inputs and outputs.
const (
	ColID        = "id"
	ColModel     = "model"
	ColVersion   = "model_version"
	ColTimestamp = "timestamp"
	ColError     = "error" // failed calls only
	ColCode      = "code"  // failed calls only
)

// Frame turns a record into rows: one row per row of the request when
// every input and output has the same dimension 0 (a batch), with each
// tensor's row as a vector column named after it (an output whose name
// an input or an id column has is prefixed "output_"); else one row
// holding each tensor whole, flattened. The inputs' columns are exactly
// what rowio.DefaultSchema reads, so a logged file replays through
// batch/job as it came.
func Frame(r Record) (*rowio.Frame, error) {
	all := slices.Concat(r.Inputs, r.Outputs)
	n := int64(-1)
	for _, t := range all {
		switch {
		case len(t.Shape) == 0 || t.Shape[0] < 1:
			n = -2
		case n == -1:
			n = t.Shape[0]
		case t.Shape[0] != n:
			n = -2
		}
	}
	flat := n < 1
	if flat {
		n = 1
	}
	f := &rowio.Frame{Rows: int(n)}
	text := func(name, v string) {
		d := make([][]byte, n)
		for i := range d {
			d[i] = []byte(v)
		}
		f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: name, Type: serving.Bytes}, Data: d})
	}
	text(ColID, r.ID)
	text(ColModel, r.Model)
	text(ColVersion, r.Version)
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = r.Time.UnixMicro()
	}
	f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: ColTimestamp, Type: serving.Int64, Timestamp: true}, Data: ts})
	if r.Err != "" {
		text(ColError, r.Err)
		text(ColCode, r.Code.String())
	}
	taken := map[string]bool{ColID: true, ColModel: true, ColVersion: true, ColTimestamp: true, ColError: true, ColCode: true}
	for i, t := range all {
		name := t.Name
		if i >= len(r.Inputs) && taken[name] {
			name = "output_" + name
		}
		if taken[name] {
			return nil, serving.Errorf(serving.InvalidArgument, "predlog: two columns named %q", name)
		}
		taken[name] = true
		if flat {
			var err error
			if t, err = serving.FromSlice(t.Name, t.DataType, []int64{1, int64(t.Len())}, t.Data()); err != nil {
				return nil, err
			}
		}
		c, err := rowio.ColumnOf(name, t)
		if err != nil {
			return nil, err
		}
		f.Cols = append(f.Cols, c)
	}
	return f, nil
}

// FileSink writes records to rotating files in a directory, in JSONL,
// CSV or Parquet. Records of one shape (the same columns) share a file;
// a file is rotated when it passes the size or the age bound, and on
// Close. A file is written under a hidden temporary name and renamed to
// PREFIX-TIME-SEQ.EXT when rotated (atomicfile.File), so whoever reads
// the directory (a batch job, a training pipeline) sees only whole
// files. Use it from one Logger; it is not safe for concurrent use.
type FileSink struct {
	dir, prefix string
	format      rowio.Format
	maxBytes    int64
	maxAge      time.Duration
	files       map[string]*logFile // by the columns' signature
	seq         int
	closed      bool
}

type logFile struct {
	a      *atomicfile.File
	buf    *bufio.Writer
	cw     *countWriter
	w      rowio.Writer
	opened time.Time
	est    int64 // bytes of data written, before encoding
}

// Defaults of a FileSink.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFileAge   = time.Hour
)

// FileOption configures a FileSink.
type FileOption interface{ applyFile(*FileSink) }

type fileOption func(*FileSink)

func (f fileOption) applyFile(s *FileSink) { f(s) }

// WithMaxBytes rotates a file once it holds n bytes (for Parquet, n bytes
// of data before encoding and compression: its size on disk grows by row
// groups). Default DefaultMaxFileBytes.
func WithMaxBytes(n int64) FileOption {
	return fileOption(func(s *FileSink) { s.maxBytes = max(1, n) })
}

// WithMaxAge rotates a file once it has been open d. Default
// DefaultMaxFileAge.
func WithMaxAge(d time.Duration) FileOption {
	return fileOption(func(s *FileSink) {
		if d > 0 {
			s.maxAge = d
		}
	})
}

// WithPrefix starts every file name. Default "predictions".
func WithPrefix(p string) FileOption { return fileOption(func(s *FileSink) { s.prefix = p }) }

// NewFileSink writes records under dir, which it creates.
func NewFileSink(dir string, format rowio.Format, opts ...FileOption) (*FileSink, error) {
	if _, err := rowio.NewWriter(format, io.Discard); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := atomicfile.RemoveTemp(dir); err != nil {
		return nil, err
	}
	s := &FileSink{dir: dir, prefix: "predictions", format: format, maxBytes: DefaultMaxFileBytes, maxAge: DefaultMaxFileAge, files: map[string]*logFile{}}
	for _, o := range opts {
		o.applyFile(s)
	}
	return s, nil
}

// Write appends the records, then rotates the files past a bound.
func (s *FileSink) Write(_ context.Context, recs []Record) error {
	if s.closed {
		return errClosedSink
	}
	var errs []error
	for _, r := range recs {
		f, err := Frame(r)
		if err == nil {
			err = s.append(f)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("predlog: record %s: %w", r.ID, err))
		}
	}
	// A file passes the size bound by at most one record.
	now := time.Now()
	for sig, lf := range s.files {
		if lf.size(s.format) >= s.maxBytes || now.Sub(lf.opened) >= s.maxAge {
			errs = append(errs, s.rotate(sig))
		}
	}
	return errors.Join(errs...)
}

func (s *FileSink) append(f *rowio.Frame) error {
	var sig strings.Builder
	for _, fl := range f.Fields() {
		fmt.Fprintf(&sig, "%s:%v:%d:%v;", fl.Name, fl.Type, fl.Width, fl.Timestamp)
	}
	key := sig.String()
	if lf := s.files[key]; lf != nil && lf.size(s.format) >= s.maxBytes {
		if err := s.rotate(key); err != nil {
			return err
		}
	}
	lf := s.files[key]
	if lf == nil {
		s.seq++
		name := fmt.Sprintf("%s-%s-%06d%s", s.prefix, time.Now().UTC().Format("20060102T150405.000Z"), s.seq, s.format.Ext())
		a, err := atomicfile.Create(filepath.Join(s.dir, name))
		if err != nil {
			return err
		}
		lf = &logFile{a: a, cw: &countWriter{w: a}, opened: time.Now()}
		lf.buf = bufio.NewWriterSize(lf.cw, 64<<10)
		lf.w, _ = rowio.NewWriter(s.format, lf.buf)
		s.files[key] = lf
	}
	for _, c := range f.Cols {
		lf.est += dataBytes(c)
	}
	return lf.w.Write(f)
}

func (lf *logFile) size(format rowio.Format) int64 {
	if format == rowio.Parquet {
		return lf.est
	}
	return lf.cw.n + int64(lf.buf.Buffered())
}

// rotate finishes a file and renames it into place.
func (s *FileSink) rotate(sig string) error {
	lf := s.files[sig]
	delete(s.files, sig)
	if err := errors.Join(lf.w.Close(), lf.buf.Flush()); err != nil {
		lf.a.Abort()
		return err
	}
	return lf.a.Commit()
}

// Close rotates every open file. It is idempotent.
func (s *FileSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for sig := range s.files {
		errs = append(errs, s.rotate(sig))
	}
	return errors.Join(errs...)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func dataBytes(c rowio.Col) int64 {
	if b, ok := c.Data.([][]byte); ok {
		var n int64
		for _, e := range b {
			n += int64(len(e)) + 4
		}
		return n
	}
	t, err := serving.FromSlice(c.Name, c.Type, []int64{int64(c.Len() * max(1, c.Width))}, c.Data)
	if err != nil {
		return 0
	}
	return int64(t.Len() * c.Type.Size())
}

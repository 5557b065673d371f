package predlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// FileSink writes records to rotating files in a directory, in JSONL,
// CSV or Parquet. Records of one shape (the same columns) share a file;
// a file is rotated when it passes the size or the age bound, when it is
// the least recently used of more than WithMaxOpenFiles, on Flush
// (Parquet only) and on Close. A file is written under a hidden temporary
// name and renamed to PREFIX-TIME-SEQ.EXT when rotated, so whoever reads
// the directory (a batch job, a training pipeline) sees only whole files.
//
// What a crash leaves is recovered by the next FileSink on the directory
// (see the package doc): nothing a sink was given is deleted. A FileSink
// holds a lock on its directory for its life, so two sinks (in one process
// or two) never write, or recover, the same directory. It is safe for
// concurrent use: the Loggers of several models may share one (records
// carry model and version), and whoever made it closes it after them.
type FileSink struct {
	mu          sync.Mutex // held by Write, Flush and Close: the fields below
	errs        []error    // options out of range, reported by NewFileSink
	dir, prefix string
	format      rowio.Format
	maxBytes    int64
	maxAge      time.Duration
	maxOpen     int
	files       map[string]*logFile // by the columns' signature
	seq         int
	use         int64 // ticks on every append: the LRU clock
	closed      bool
	lock        *os.File
	recovered   Recovery
}

type logFile struct {
	a      *atomicfile.File
	buf    *bufio.Writer
	cw     *countWriter
	w      rowio.Writer
	opened time.Time
	used   int64 // FileSink.use at the last append
	est    int64 // bytes of data written, before encoding
	dirty  bool  // appended to since the last flush
}

// Defaults of a FileSink.
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultMaxFileAge   = time.Hour
	// DefaultMaxOpenFiles: a model version's traffic has a few shapes
	// (answers, failures, a few request layouts); sixteen keeps them all
	// open, while a flood of requests that each invent their own column
	// names holds at most sixteen files (and their buffers), not one each.
	DefaultMaxOpenFiles = 16
)

// FileOption configures a FileSink.
type FileOption interface{ applyFile(*FileSink) }

type fileOption func(*FileSink)

func (f fileOption) applyFile(s *FileSink) { f(s) }

// WithMaxBytes rotates a file once it holds n bytes (for Parquet, n bytes
// of data before encoding and compression: its size on disk grows by row
// groups). Default DefaultMaxFileBytes.
func WithMaxBytes(n int64) FileOption {
	return fileOption(func(s *FileSink) { s.require(n >= 1, "max bytes %d < 1", n); s.maxBytes = n })
}

// WithMaxAge rotates a file once it has been open d. Default
// DefaultMaxFileAge.
func WithMaxAge(d time.Duration) FileOption {
	return fileOption(func(s *FileSink) { s.require(d > 0, "max age %v <= 0", d); s.maxAge = d })
}

// WithMaxOpenFiles bounds the files open at once: a record that needs
// another file first rotates the least recently used one. Default
// DefaultMaxOpenFiles.
func WithMaxOpenFiles(n int) FileOption {
	return fileOption(func(s *FileSink) { s.require(n >= 1, "max open files %d < 1", n); s.maxOpen = n })
}

func (s *FileSink) require(ok bool, format string, args ...any) {
	if !ok {
		s.errs = append(s.errs, fmt.Errorf(format, args...))
	}
}

// WithPrefix starts every file name. Default "predictions".
func WithPrefix(p string) FileOption { return fileOption(func(s *FileSink) { s.prefix = p }) }

// NewFileSink writes records under dir, which it creates. It locks dir,
// then recovers what a crashed predecessor left there (Recovered says
// what); it fails when another FileSink holds dir, and with an
// InvalidArgument error for an invalid option.
func NewFileSink(dir string, format rowio.Format, opts ...FileOption) (*FileSink, error) {
	s := &FileSink{dir: dir, prefix: "predictions", format: format, maxBytes: DefaultMaxFileBytes, maxAge: DefaultMaxFileAge,
		maxOpen: DefaultMaxOpenFiles, files: map[string]*logFile{}}
	for _, o := range opts {
		o.applyFile(s)
	}
	s.require(s.prefix != "" && !strings.ContainsAny(s.prefix, `/\`) && !strings.HasPrefix(s.prefix, "."),
		"prefix %q: want a file name that does not start with a dot", s.prefix)
	if err := errors.Join(s.errs...); err != nil {
		return nil, serving.Errorf(serving.InvalidArgument, "predlog: %w", err)
	}
	if _, err := rowio.NewWriter(format, io.Discard); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if s.recovered, err = recoverDir(dir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("predlog: recover %s: %w", dir, err)
	}
	return s, nil
}

// Recovered says what NewFileSink found in the directory: the files a
// crash left, and what became of them.
func (s *FileSink) Recovered() Recovery { return s.recovered }

// Write appends the records, then rotates the files past a bound. The
// JSONL and CSV rows it wrote are handed to the operating system before it
// returns, so a crash of the process from then on loses none of them (see
// Flush for a crash of the machine).
func (s *FileSink) Write(_ context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	errs = append(errs, s.flush(false))
	return errors.Join(errs...)
}

// Flush makes what the sink was given durable: JSONL and CSV files are
// written out and fsynced; Parquet files are rotated, since a Parquet file
// is readable only once its footer is written (so each Flush ends the
// Parquet files it finds open).
func (s *FileSink) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.format == rowio.Parquet {
		var errs []error
		for sig := range s.files {
			errs = append(errs, s.rotate(sig))
		}
		return errors.Join(errs...)
	}
	return s.flush(true)
}

// flush writes the buffered rows of the files appended to since the last
// flush (JSONL, CSV) to the operating system, and with sync to the disk.
func (s *FileSink) flush(sync bool) error {
	if s.format == rowio.Parquet {
		return nil
	}
	var errs []error
	for _, lf := range s.files {
		if !lf.dirty && !sync {
			continue
		}
		err := errors.Join(lf.w.(rowio.Flusher).Flush(), lf.buf.Flush())
		if err == nil && sync {
			err = lf.a.Sync()
		}
		lf.dirty = err != nil
		errs = append(errs, err)
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
		if len(s.files) >= s.maxOpen {
			if err := s.rotate(s.leastRecentlyUsed()); err != nil {
				return err
			}
		}
		var err error
		if lf, err = s.create(); err != nil {
			return err
		}
		s.files[key] = lf
	}
	s.use++
	lf.used, lf.dirty = s.use, true
	for _, c := range f.Cols {
		lf.est += dataBytes(c)
	}
	return lf.w.Write(f)
}

func (s *FileSink) create() (*logFile, error) {
	s.seq++
	name := fmt.Sprintf("%s-%s-%06d%s", s.prefix, time.Now().UTC().Format("20060102T150405.000Z"), s.seq, s.format.Ext())
	a, err := atomicfile.Create(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	lf := &logFile{a: a, cw: &countWriter{w: a}, opened: time.Now()}
	lf.buf = bufio.NewWriterSize(lf.cw, 64<<10)
	lf.w, _ = rowio.NewWriter(s.format, lf.buf)
	return lf, nil
}

func (s *FileSink) leastRecentlyUsed() string {
	var key string
	var used int64
	for k, lf := range s.files {
		if key == "" || lf.used < used {
			key, used = k, lf.used
		}
	}
	return key
}

func (lf *logFile) size(format rowio.Format) int64 {
	if format == rowio.Parquet {
		return lf.est
	}
	return lf.cw.n + int64(lf.buf.Buffered())
}

// rotate finishes a file and renames it into place. A file that cannot be
// finished is left under its temporary name, never removed: the next
// FileSink on the directory recovers its whole records.
func (s *FileSink) rotate(sig string) error {
	lf := s.files[sig]
	delete(s.files, sig)
	if err := errors.Join(lf.w.Close(), lf.buf.Flush()); err != nil {
		lf.a.Close()
		return fmt.Errorf("%w (kept as %s for recovery)", err, lf.a.Name())
	}
	return lf.a.Commit()
}

// Close rotates every open file and releases the directory. It is
// idempotent.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for sig := range s.files {
		errs = append(errs, s.rotate(sig))
	}
	errs = append(errs, s.lock.Close()) // closing the descriptor releases the lock
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

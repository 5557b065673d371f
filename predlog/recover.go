package predlog

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/rowio"
)

// Recovery is what a FileSink found in its directory when it started: the
// temporary files a crash (kill -9, an OOM kill, a power loss) left, and
// what became of them. Nothing that held a whole record was deleted.
type Recovery struct {
	// Committed names the files whose whole records were kept: a torn
	// last row cut off (JSONL, CSV) and the file renamed to the name its
	// writer would have given it (or that name with "-1", "-2"... when a
	// file has it).
	Committed []string
	// Records counts the rows of the committed files.
	Records int64
	// Partial names the Parquet files a crash left before their footer
	// was written, which no ordinary reader can open: kept, renamed to
	// NAME.parquet.partial (a glob on *.parquet passes them over).
	Partial []string
	// Empty counts the temporary files that held no whole record, removed.
	Empty int
}

// recoverDir commits the temporary log files of dir (a FileSink holds its
// lock, so none of them is being written).
func recoverDir(dir string) (Recovery, error) {
	var rec Recovery
	temps, err := atomicfile.Temps(dir)
	if err != nil {
		return rec, err
	}
	for _, t := range temps {
		format, err := rowio.FormatOf(t.Final)
		if err != nil {
			continue // not a log file: not ours to touch
		}
		var rows, size int64
		ok := true
		switch format {
		case rowio.JSONL:
			rows, size, err = jsonlPrefix(t.Path)
		case rowio.CSV:
			rows, size, err = csvPrefix(t.Path)
		case rowio.Parquet:
			rows, ok, err = parquetRows(t.Path)
		}
		if err != nil {
			return rec, err
		}
		switch {
		case !ok:
			name, err := atomicfile.CommitTemp(t.Path, t.Final+".partial")
			if err != nil {
				return rec, err
			}
			rec.Partial = append(rec.Partial, name)
		case rows == 0:
			if err := os.Remove(t.Path); err != nil {
				return rec, err
			}
			rec.Empty++
		default:
			if format != rowio.Parquet {
				if err := os.Truncate(t.Path, size); err != nil {
					return rec, err
				}
			}
			name, err := atomicfile.CommitTemp(t.Path, t.Final)
			if err != nil {
				return rec, err
			}
			rec.Committed = append(rec.Committed, name)
			rec.Records += rows
		}
	}
	return rec, nil
}

// jsonlPrefix counts the whole rows at the start of a JSONL file (each a
// line ending in a newline and holding valid JSON) and the bytes they
// take: what follows is a row torn by the crash, or garbage a power loss
// left past the last fsync.
func jsonlPrefix(path string) (rows, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...)
			continue
		}
		if err != nil { // io.EOF: a last line without its newline is torn
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return rows, size, err
		}
		if len(line) > 0 {
			chunk = append(line, chunk...)
		}
		if !json.Valid(chunk) || len(bytes.TrimSpace(chunk)) == 0 {
			return rows, size, nil
		}
		rows++
		size += int64(len(chunk))
		line = line[:0]
	}
}

// csvPrefix counts the whole rows of a CSV file after its header, and the
// bytes the header and those rows take. A row is whole when it has the
// header's number of fields and ends in a newline (a quoted field may hold
// newlines of its own).
func csvPrefix(path string) (rows, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.ReuseRecord = true
	var n, end int64
	for {
		if _, err := r.Read(); err != nil {
			break // io.EOF, or a row torn inside a quoted field or short of fields
		}
		off := r.InputOffset()
		if off == st.Size() { // the last row: whole only if its newline made it
			var last [1]byte
			if _, err := f.ReadAt(last[:], off-1); err != nil || last[0] != '\n' {
				break
			}
		}
		n++
		end = off
	}
	if n <= 1 { // a header alone holds no record
		return 0, 0, nil
	}
	return n - 1, end, nil
}

// parquetRows opens a Parquet file: ok when its footer is there (the crash
// came after the writer closed it, before the rename), with its rows.
func parquetRows(path string) (rows int64, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return 0, st.Size() == 0, nil // an empty file holds nothing; else it is partial
	}
	return pf.NumRows(), true, nil
}

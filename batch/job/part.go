package job

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/rowio"
)

// partState is a part being written: its output and dead-letter files,
// open under temporary names until the part's last batch is in.
type partState struct {
	part        int64
	batches     int // known once the part's end marker arrived
	got         int
	start, stop int64
	file        *atomicfile.File
	w           rowio.Writer
	buf         *bufio.Writer
	rows        int64
	dead        *atomicfile.File
	deadW       *bufio.Writer
	deadRows    int64
}

// deadRow is a dead-letter record: one JSON line per failed row.
type deadRow struct {
	Row   int64  `json:"row"`
	Line  int64  `json:"line,omitempty"`
	Stage string `json:"stage"` // decode or predict
	Err   string `json:"error"`
	// Raw is the input line (JSONL) or record (CSV) of a row that did not
	// decode; Input the decoded columns of a row the model refused.
	Raw   string          `json:"raw,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

// PartFile and DeadLetterFile name the files of part p.
func PartFile(p int64, f rowio.Format) string { return fmt.Sprintf("part-%06d%s", p, f.Ext()) }

// DeadLetterFile names the dead-letter file of part p, always JSONL.
func DeadLetterFile(p int64) string { return fmt.Sprintf("deadletter-%06d.jsonl", p) }

func (l *lane) part(p int64) *partState {
	if st, ok := l.parts[p]; ok {
		return st
	}
	st := &partState{part: p}
	l.parts[p] = st
	return st
}

func (st *partState) write(l *lane, f *rowio.Frame) error {
	if f.Len() == 0 {
		return nil
	}
	j := l.j
	if st.w == nil {
		a, err := atomicfile.Create(filepath.Join(j.dir, PartFile(st.part, j.cfg.outFormat)))
		if err != nil {
			return err
		}
		st.file = a
		wb := &writeback{f: a.File, start: startWriteback}
		if n := len(l.bufs); n > 0 {
			st.buf, l.bufs = l.bufs[n-1], l.bufs[:n-1]
			st.buf.Reset(wb)
		} else {
			st.buf = bufio.NewWriterSize(wb, 256<<10)
		}
		if st.w, err = rowio.NewWriter(j.cfg.outFormat, st.buf); err != nil {
			return err
		}
	}
	st.rows += int64(f.Len())
	return st.w.Write(f)
}

func (st *partState) writeDead(j *run, d *deadRow) error {
	if st.dead == nil {
		a, err := atomicfile.Create(filepath.Join(j.dir, DeadLetterFile(st.part)))
		if err != nil {
			return err
		}
		st.dead, st.deadW = a, bufio.NewWriter(a)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	st.deadRows++
	st.deadW.Write(append(b, '\n'))
	return nil
}

// finish completes the part's files (Parquet's footer, buffered bytes),
// on its lane's writer goroutine, whose next part takes over the buffer;
// the committer then makes the files durable.
func (st *partState) finish(l *lane) error {
	if st.w != nil {
		if err := st.w.Close(); err != nil {
			return err
		}
		if err := st.buf.Flush(); err != nil {
			return err
		}
		l.bufs = append(l.bufs, st.buf)
		st.buf = nil
	}
	if st.dead != nil {
		return st.deadW.Flush()
	}
	return nil
}

// files are the part's finished files, for the committer to sync and
// rename into place.
func (st *partState) files() []*atomicfile.File {
	var fs []*atomicfile.File
	if st.w != nil {
		fs = append(fs, st.file)
	}
	if st.dead != nil {
		fs = append(fs, st.dead)
	}
	return fs
}

// clean removes the files a crashed run left under the names of files
// this run does not write for the part (a part that failed a row then
// and not now), so the directory holds each row once.
func (st *partState) clean(j *run) error {
	if st.w == nil {
		if err := removeIfThere(filepath.Join(j.dir, PartFile(st.part, j.cfg.outFormat))); err != nil {
			return err
		}
	}
	if st.dead == nil {
		return removeIfThere(filepath.Join(j.dir, DeadLetterFile(st.part)))
	}
	return nil
}

// record is the part's manifest entry.
func (st *partState) record(j *run) Part {
	p := Part{Part: st.part, Start: st.start, End: st.stop, Rows: st.rows, Errors: st.deadRows}
	if st.w != nil {
		p.File = PartFile(st.part, j.cfg.outFormat)
	}
	if st.dead != nil {
		p.DeadLetter = DeadLetterFile(st.part)
	}
	return p
}

func (st *partState) abort() {
	if st.file != nil {
		st.file.Abort()
	}
	if st.dead != nil {
		st.dead.Abort()
	}
}

func removeIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// renderRow renders the one row of f as a JSON object, for a dead letter.
func renderRow(f *rowio.Frame) json.RawMessage {
	var b bytes.Buffer
	w, _ := rowio.NewWriter(rowio.JSONL, &b)
	if w.Write(f) != nil || w.Close() != nil {
		return nil
	}
	return bytes.TrimSpace(b.Bytes())
}

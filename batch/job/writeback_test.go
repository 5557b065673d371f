package job

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The writer of a part asks for writeback of what it wrote, every
// writebackBytes, in ranges that follow each other from the start of the
// file, and the file holds exactly the bytes written (on Linux, through
// the real sync_file_range).
func TestWritebackRanges(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "part"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type rng struct{ off, n int64 }
	var got []rng
	var real func(*os.File, int64, int64) = startWriteback // nil where there is none
	wb := &writeback{f: f, start: func(g *os.File, off, n int64) {
		got = append(got, rng{off, n})
		if real != nil {
			real(g, off, n)
		}
	}}
	bw := bufio.NewWriterSize(wb, 100<<10) // flushes that do not divide writebackBytes
	var want bytes.Buffer
	for i := range 3 * writebackBytes / 1000 {
		line := bytes.Repeat([]byte{byte(i)}, 1000)
		bw.Write(line)
		want.Write(line)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 {
		t.Fatalf("writeback asked %d times for %d bytes, want at least 2", len(got), want.Len())
	}
	var at int64
	for _, r := range got {
		if r.off != at || r.n < writebackBytes {
			t.Fatalf("ranges %v: want each to start where the last ended and hold at least %d bytes", got, writebackBytes)
		}
		at += r.n
	}
	if at > int64(want.Len()) || int64(want.Len())-at >= writebackBytes {
		t.Fatalf("ranges %v cover %d of %d bytes: the rest should be under %d", got, at, want.Len(), writebackBytes)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("file holds %d bytes (%v), want the %d written", len(b), err, want.Len())
	}
}

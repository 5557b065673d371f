package predlog_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/predlog"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// childEnv, when set, makes the test binary a logging process: TestMain
// runs child, which logs until it is killed.
const childEnv = "SERVEKIT_PREDLOG_CHILD"

// child logs one-row predictions with ids r<N> counting up from
// $PREDLOG_FIRST into $PREDLOG_DIR, flushing every ten, and prints
// "acked N" after each Flush that returned nil: every record up to N is
// then durable.
func child() int {
	format, _ := rowio.ParseFormat(os.Getenv(childEnv))
	first, _ := strconv.Atoi(os.Getenv("PREDLOG_FIRST"))
	sink, err := predlog.NewFileSink(os.Getenv("PREDLOG_DIR"), format, predlog.WithMaxBytes(16<<10))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := predlog.New(servingtest.Linear(3), sink, predlog.WithQueueSize(1<<16))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	for n := first; ; n++ {
		req := servingtest.Rows(3, 1, float32(n))
		req.ID = recID(n)
		if _, err := l.Predict(ctx, req); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if n%10 != 9 {
			continue
		}
		if err := l.Flush(ctx); err != nil || l.Stats().Dropped > 0 || l.Stats().Failed > 0 {
			fmt.Fprintln(os.Stderr, "flush:", err, l.Stats())
			return 1
		}
		fmt.Printf("acked %d\n", n)
	}
}

func recID(n int) string { return fmt.Sprintf("r%07d", n) }

// TestKillDashNine kills a real logging process (SIGKILL, no cleanup) at a
// random moment, several times in a row on one directory, and checks that
// every record a Flush acknowledged is in a committed file afterwards,
// exactly once, and that no temporary file is left: for each format.
func TestKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, format := range []rowio.Format{rowio.JSONL, rowio.CSV, rowio.Parquet} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			type span struct{ first, acked int }
			var spans []span
			for round, first := 0, 0; round < 3; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+format.String(), "PREDLOG_DIR="+dir, "PREDLOG_FIRST="+strconv.Itoa(first))
				cmd.Stderr = os.Stderr
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// Kill right after a random ack: the child is then logging,
				// flushing or rotating its next records.
				sp := span{first, first - 1}
				want := 5 + rng.IntN(40)
				sc := bufio.NewScanner(out)
				for got := 0; got < want && sc.Scan(); got++ {
					n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "acked "))
					if err != nil {
						t.Fatalf("child said %q", sc.Text())
					}
					sp.acked = n
				}
				if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
					t.Fatal(err)
				}
				io.Copy(io.Discard, out)
				cmd.Wait()
				if sp.acked < sp.first {
					t.Fatalf("round %d: the child acknowledged nothing", round)
				}
				spans = append(spans, sp)
				first = sp.acked + 100_000 // past whatever it logged unacknowledged
			}
			sink, err := predlog.NewFileSink(dir, format)
			if err != nil {
				t.Fatal(err)
			}
			rec := sink.Recovered()
			t.Logf("acknowledged %v; last recovery: %d files committed with %d records, %d partial, %d empty",
				spans, len(rec.Committed), rec.Records, len(rec.Partial), rec.Empty)
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			seen := loggedIDs(t, dir, format)
			for id, c := range seen {
				if c != 1 {
					t.Errorf("record %s logged %d times", id, c)
				}
			}
			missing := 0
			for _, sp := range spans {
				for n := sp.first; n <= sp.acked; n++ {
					if seen[recID(n)] == 0 {
						missing++
					}
				}
			}
			if missing > 0 {
				t.Errorf("%d acknowledged records missing after the kills", missing)
			}
			if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmp) > 0 {
				t.Errorf("temporary files left after recovery: %v", tmp)
			}
		})
	}
}

// loggedIDs counts the ids in the committed log files of dir.
func loggedIDs(t *testing.T, dir string, format rowio.Format) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"+format.Ext()))
	seen := map[string]int{}
	for _, f := range files {
		r, err := rowio.Open(f, format, []rowio.Field{{Name: predlog.ColID, Type: serving.Bytes}})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for {
			var fr rowio.Frame
			err := r.Read(&fr, 1024)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || len(fr.Bad) > 0 {
				t.Fatalf("%s: %v, bad rows %v", f, err, fr.Bad)
			}
			for _, id := range fr.Cols[0].Data.([][]byte) {
				seen[string(id)]++
			}
		}
		r.Close()
	}
	return seen
}

// leave writes a temporary file as a crashed writer leaves it: under the
// hidden name atomicfile gives it, for the final name given.
func leave(t *testing.T, dir, final, content string) {
	t.Helper()
	f, err := atomicfile.Create(filepath.Join(dir, final))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close() // never committed
}

// What a crash leaves is kept: whole rows committed under the file's own
// name, a torn last row cut off, a Parquet file without its footer set
// aside, files that are not logs left alone; only files with no whole row
// are removed.
func TestRecoversTornFiles(t *testing.T) {
	dir := t.TempDir()
	leave(t, dir, "p-1.jsonl", `{"id":"a"}`+"\n"+`{"id":"b"}`+"\n"+`{"id":"c","x":[1,`)
	leave(t, dir, "p-2.csv", "id,text\na,one\nb,\"two\nlines\"\nc,\"torn")
	leave(t, dir, "p-3.csv", "id,text\na,one\nb,tw") // torn without a quote
	leave(t, dir, "p-4.csv", "id,text\n")            // a header alone
	leave(t, dir, "p-5.parquet", "PAR1 row groups but no footer")
	leave(t, dir, "p-6.jsonl", `{"id":`)
	leave(t, dir, "model.onnx", "not a log")
	if err := os.WriteFile(filepath.Join(dir, "p-1.jsonl"), []byte("taken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sink, err := predlog.NewFileSink(dir, rowio.JSONL)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rec := sink.Recovered()
	if rec.Records != 2+2+1 || len(rec.Committed) != 3 || rec.Empty != 2 || len(rec.Partial) != 1 {
		t.Errorf("recovery %+v", rec)
	}
	for name, want := range map[string]string{
		"p-1.jsonl":           "taken\n", // never replaced
		"p-1-1.jsonl":         `{"id":"a"}` + "\n" + `{"id":"b"}` + "\n",
		"p-2.csv":             "id,text\na,one\nb,\"two\nlines\"\n",
		"p-3.csv":             "id,text\na,one\n",
		"p-5.parquet.partial": "PAR1 row groups but no footer",
	} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for _, gone := range []string{"p-4.csv", "p-6.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s committed with no row", gone)
		}
	}
	if temps, _ := atomicfile.Temps(dir); len(temps) != 1 || filepath.Base(temps[0].Final) != "model.onnx" {
		t.Errorf("temporary files left: %v, want only the one that is not a log", temps)
	}
}

// One directory, one sink: a second FileSink would commit the first one's
// files under it.
func TestOneSinkPerDirectory(t *testing.T) {
	dir := t.TempDir()
	a, err := predlog.NewFileSink(dir, rowio.JSONL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := predlog.NewFileSink(dir, rowio.CSV); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second sink on a held directory: %v", err)
	}
	a.Close()
	b, err := predlog.NewFileSink(dir, rowio.CSV)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b.Close()
}

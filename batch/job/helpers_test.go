package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// The test data: rows with a text key "id", and two FP32 columns a and b
// that feed the Linear(2) fake's input x; it answers y = 2x + 1.
var schema = rowio.Schema{
	Inputs: []rowio.Input{{Name: "x", Columns: []string{"a", "b"}}},
	Keys:   []rowio.Field{{Name: "id"}},
}

func idOf(i int) string { return fmt.Sprintf("id-%d", i) }

// writeInput writes n rows in format; bad lists rows written with a value
// that does not parse (text formats only).
func writeInput(t testing.TB, dir string, format rowio.Format, n int, bad ...int) string {
	t.Helper()
	path := filepath.Join(dir, "input"+format.Ext())
	if len(bad) > 0 {
		var b strings.Builder
		if format == rowio.CSV {
			b.WriteString("id,a,b\n")
		}
		isBad := map[int]bool{}
		for _, i := range bad {
			isBad[i] = true
		}
		for i := range n {
			a := fmt.Sprint(i)
			if isBad[i] {
				a = `"oops"`
			}
			if format == rowio.CSV {
				fmt.Fprintf(&b, "%s,%s,%d\n", idOf(i), strings.Trim(a, `"`), -i)
			} else {
				fmt.Fprintf(&b, `{"id":%q,"a":%s,"b":%d}`+"\n", idOf(i), a, -i)
			}
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := rowio.NewWriter(format, f)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 1000
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		ids, a, b := make([][]byte, 0, hi-lo), make([]float32, 0, hi-lo), make([]float32, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ids, a, b = append(ids, []byte(idOf(i))), append(a, float32(i)), append(b, float32(-i))
		}
		if err := w.Write(&rowio.Frame{Rows: hi - lo, Cols: []rowio.Col{
			{Field: rowio.Field{Name: "id", Type: serving.Bytes}, Data: ids},
			{Field: rowio.Field{Name: "a", Type: serving.FP32}, Data: a},
			{Field: rowio.Field{Name: "b", Type: serving.FP32}, Data: b},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// output is what a job left in a directory (all shards below it).
type output struct {
	rows  map[int64]int // row number → times written
	dead  map[int64]int
	model string
	parts int
}

// readOutput reads every part and dead-letter file under dir and checks
// each written row: its id and y = 2x + 1.
func readOutput(t testing.TB, dir string, format rowio.Format) output {
	t.Helper()
	out := output{rows: map[int64]int{}, dead: map[int64]int{}}
	fields := []rowio.Field{{Name: job.ColRow, Type: serving.Int64}, {Name: "id", Type: serving.Bytes},
		{Name: "y", Type: serving.FP32, Width: 2}, {Name: job.ColModel, Type: serving.Bytes}}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, "part-"):
			out.parts++
			r, err := rowio.Open(path, format, fields)
			if err != nil {
				return err
			}
			defer r.Close()
			for {
				var f rowio.Frame
				if err := r.Read(&f, 500); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				if len(f.Bad) > 0 {
					return fmt.Errorf("%s: unreadable row %+v", path, f.Bad[0])
				}
				rows, ids, ys, models := f.Cols[0].Data.([]int64), f.Cols[1].Data.([][]byte), f.Cols[2].Data.([]float32), f.Cols[3].Data.([][]byte)
				for i, r := range rows {
					out.rows[r]++
					out.model = string(models[i])
					if string(ids[i]) != idOf(int(r)) || ys[2*i] != 2*float32(r)+1 || ys[2*i+1] != -2*float32(r)+1 {
						return fmt.Errorf("%s: row %d: id %s y %v", path, r, ids[i], ys[2*i:2*i+2])
					}
				}
			}
		case strings.HasPrefix(name, "deadletter-"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var row int64
				if _, err := fmt.Sscanf(l, `{"row":%d`, &row); err != nil {
					return fmt.Errorf("%s: %q: %v", path, l, err)
				}
				out.dead[row]++
			}
		case strings.HasSuffix(name, atomicfile.TempSuffix):
			return fmt.Errorf("temporary file left: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exactlyOnce checks that rows 0..n-1 are each in the output or the dead
// letters exactly once, and that the dead ones are the want ones.
func (o output) exactlyOnce(t testing.TB, n int, wantDead ...int64) {
	t.Helper()
	isDead := map[int64]bool{}
	for _, r := range wantDead {
		isDead[r] = true
	}
	for r := range int64(n) {
		got, dead := o.rows[r], o.dead[r]
		if isDead[r] {
			if got != 0 || dead != 1 {
				t.Fatalf("row %d: written %d times, dead-lettered %d times; want dead once", r, got, dead)
			}
		} else if got != 1 || dead != 0 {
			t.Fatalf("row %d: written %d times, dead-lettered %d times; want written once", r, got, dead)
		}
	}
	if len(o.rows)+len(o.dead) != n {
		t.Fatalf("%d rows written + %d dead, want %d in all", len(o.rows), len(o.dead), n)
	}
}

// slowLinear is Linear(2) taking d per call, so a job lasts long enough
// to be killed in the middle.
func slowLinear(d time.Duration) serving.Predictor {
	lin := servingtest.Linear(2)
	return servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		time.Sleep(d)
		resp, err := lin.Predict(ctx, req)
		if resp != nil {
			resp.Version = "7"
		}
		return resp, err
	}).WithMetadata(lin.Metadata())
}

package rowio_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// foreignRow is a row as other writers lay it out: optional columns,
// dictionary-encoded text, float64 features (pandas' default), unsigned
// and narrow integers, millisecond timestamps, lists of any length.
type foreignRow struct {
	ID int64     `parquet:"id"`
	X  *float32  `parquet:"x,optional"`
	D  float64   `parquet:"d"`
	V  []float32 `parquet:"v"`
	S  string    `parquet:"s,dict"`
	U  uint32    `parquet:"u"`
	T  time.Time `parquet:"t,timestamp(millisecond)"`
	K  int32     `parquet:"k"`
	B  bool      `parquet:"b"`
}

var foreignFields = []rowio.Field{
	{Name: "id", Type: serving.Int64},
	{Name: "x", Type: serving.FP32},
	{Name: "d", Type: serving.FP32},
	{Name: "v", Type: serving.FP32, Width: 3},
	{Name: "s", Type: serving.Bytes},
	{Name: "u", Type: serving.Uint32},
	{Name: "t", Type: serving.Int64, Timestamp: true},
	{Name: "k", Type: serving.Int8},
	{Name: "b", Type: serving.Bool},
}

// foreignRows makes n rows, some of them bad for a reason that why says.
func foreignRows(n int) (rows []foreignRow, why map[int64]string) {
	why = map[int64]string{}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		x := float32(i) / 4
		r := foreignRow{ID: int64(i), X: &x, D: float64(i) / 8, V: []float32{float32(i), -float32(i), 0.5},
			S: fmt.Sprintf("s%d", i%7), U: math.MaxUint32 - uint32(i), T: base.Add(time.Duration(i) * time.Millisecond),
			K: int32(i%200 - 100), B: i%3 == 0}
		switch i % 211 {
		case 5:
			r.X, why[int64(i)] = nil, "null"
		case 17:
			r.V, why[int64(i)] = r.V[:2], "2 elements"
		case 29:
			r.V, why[int64(i)] = append(r.V, 9), "4 elements"
		case 41:
			r.V, why[int64(i)] = nil, "0 elements"
		case 53:
			r.D, why[int64(i)] = 1e300, "overflows FP32"
		case 67:
			r.K, why[int64(i)] = 300, "out of range"
		case 79: // two reasons: the first column's is kept
			r.X, r.K, why[int64(i)] = nil, -300, "null"
		}
		rows = append(rows, r)
	}
	return rows, why
}

// TestParquetForeignFiles reads files as other writers make them, with
// and without dictionaries, with page format 1 and 2, with pages of a
// few rows (lists end at page ends), in batches that cut row groups and
// pages anywhere, after a skip: every good row is whole and right, every
// bad row is reported once with its first reason.
func TestParquetForeignFiles(t *testing.T) {
	const n = 5000
	rows, why := foreignRows(n)
	for _, c := range []struct {
		name string
		opts []parquet.WriterOption
	}{
		{"v2", nil},
		{"v1", []parquet.WriterOption{parquet.DataPageVersion(1)}},
		{"v2-small-pages", []parquet.WriterOption{parquet.PageBufferSize(300)}},
		{"v1-small-pages-groups", []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(200), parquet.MaxRowsPerRowGroup(999)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := parquet.NewGenericWriter[foreignRow](&buf, c.opts...)
			for lo := 0; lo < n; lo += 1000 {
				if _, err := w.Write(rows[lo : lo+1000]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := rowio.NewReader(rowio.Parquet, bytes.NewReader(buf.Bytes()), int64(buf.Len()), foreignFields)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			const skip = 123
			if k, err := r.Skip(skip); k != skip || err != nil {
				t.Fatalf("Skip = %d, %v", k, err)
			}
			next, bad := int64(skip), 0
			for {
				var f rowio.Frame
				if err := r.Read(&f, 777); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if f.Start != next {
					t.Fatalf("frame starts at %d, want %d", f.Start, next)
				}
				next += int64(f.Rows)
				for _, b := range f.Bad {
					bad++
					if w := why[b.Row]; w == "" || !strings.Contains(b.Err.Error(), w) {
						t.Errorf("row %d bad: %v, want %q", b.Row, b.Err, w)
					}
				}
				checkForeign(t, &f, rows, why)
			}
			wantBad := 0
			for i := range why {
				if i >= skip {
					wantBad++
				}
			}
			if next != n || bad != wantBad {
				t.Errorf("read to row %d with %d bad, want %d with %d", next, bad, n, wantBad)
			}
		})
	}
}

func checkForeign(t *testing.T, f *rowio.Frame, rows []foreignRow, why map[int64]string) {
	t.Helper()
	ids, xs, ds, vs := f.Cols[0].Data.([]int64), f.Cols[1].Data.([]float32), f.Cols[2].Data.([]float32), f.Cols[3].Data.([]float32)
	ss, us, ts, ks, bs := f.Cols[4].Data.([][]byte), f.Cols[5].Data.([]uint32), f.Cols[6].Data.([]int64), f.Cols[7].Data.([]int8), f.Cols[8].Data.([]bool)
	for i := range f.Len() {
		row := f.RowNumber(i)
		r := rows[row]
		got := []any{ids[i], xs[i], ds[i], vs[3*i : 3*i+3], string(ss[i]), us[i], ts[i], ks[i], bs[i]}
		want := []any{r.ID, *r.X, float32(r.D), r.V, r.S, r.U, r.T.UnixMicro(), int8(r.K), r.B}
		if why[row] != "" || !reflect.DeepEqual(got, want) {
			t.Fatalf("row %d (%q): got %v, want %v", row, why[row], got, want)
		}
	}
}

// TestParquetTimestampUnits reads nanosecond and millisecond timestamps
// into microseconds, flooring before the epoch, and refuses one that
// does not fit.
func TestParquetTimestampUnits(t *testing.T) {
	type row struct {
		Nano  int64 `parquet:"nano,timestamp(nanosecond)"`
		Milli int64 `parquet:"milli,timestamp(millisecond)"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf)
	w.Write([]row{{1_500, 2}, {-1_500, -2}, {0, math.MaxInt64 / 10}})
	w.Close()
	r, err := rowio.NewReader(rowio.Parquet, bytes.NewReader(buf.Bytes()), int64(buf.Len()),
		[]rowio.Field{{Name: "nano", Type: serving.Int64, Timestamp: true}, {Name: "milli", Type: serving.Int64, Timestamp: true}})
	if err != nil {
		t.Fatal(err)
	}
	var f rowio.Frame
	if err := r.Read(&f, 10); err != nil {
		t.Fatal(err)
	}
	if got := f.Cols[0].Data.([]int64); !reflect.DeepEqual(got, []int64{1, -2}) {
		t.Errorf("nanoseconds as µs = %v, want [1 -2]", got)
	}
	if got := f.Cols[1].Data.([]int64); !reflect.DeepEqual(got, []int64{2000, -2000}) {
		t.Errorf("milliseconds as µs = %v, want [2000 -2000]", got)
	}
	if len(f.Bad) != 1 || f.Bad[0].Row != 2 || !strings.Contains(f.Bad[0].Err.Error(), "overflows") {
		t.Errorf("bad rows %+v, want row 2 overflowing", f.Bad)
	}
}

// TestParquetUnreadableType fails at Open, naming the column, rather than
// failing every row.
func TestParquetUnreadableType(t *testing.T) {
	type row struct {
		Old deprecated.Int96 `parquet:"old"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf)
	w.Write([]row{{}})
	w.Close()
	_, err := rowio.NewReader(rowio.Parquet, bytes.NewReader(buf.Bytes()), int64(buf.Len()), []rowio.Field{{Name: "old", Type: serving.Int64}})
	if serving.CodeOf(err) != serving.InvalidArgument || !strings.Contains(err.Error(), `"old"`) {
		t.Errorf("INT96 column: %v", err)
	}
}

// A vector column is a Parquet list other readers see row by row: each
// row's values, the first at repetition level 0, the rest at 1, all
// defined, across the writer's runs of values and its frames.
func TestParquetVectorLevels(t *testing.T) {
	const rows, wd = 1000, 7 // 7 does not divide the writer's runs of values
	x := make([]float32, rows*wd)
	for i := range x {
		x[i] = float32(i)
	}
	var buf bytes.Buffer
	w, _ := rowio.NewWriter(rowio.Parquet, &buf)
	for lo := 0; lo < rows; lo += 300 {
		hi := min(rows, lo+300)
		f := &rowio.Frame{Rows: hi - lo, Cols: []rowio.Col{{Field: rowio.Field{Name: "v", Type: serving.FP32, Width: wd}, Data: x[lo*wd : hi*wd]}}}
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := parquet.NewReader(bytes.NewReader(buf.Bytes()))
	defer r.Close()
	got := make([]parquet.Row, 1)
	for row := 0; row < rows; row++ {
		if n, err := r.ReadRows(got); n != 1 {
			t.Fatalf("row %d: %d rows, %v", row, n, err)
		}
		vals := got[0]
		if len(vals) != wd {
			t.Fatalf("row %d: %d values, want %d", row, len(vals), wd)
		}
		for i, v := range vals {
			rep := min(i, 1)
			if v.RepetitionLevel() != rep || v.DefinitionLevel() != 1 || v.Float() != x[row*wd+i] {
				t.Fatalf("row %d value %d: %v at levels %d/%d, want %v at %d/1", row, i, v.Float(), v.RepetitionLevel(), v.DefinitionLevel(), x[row*wd+i], rep)
			}
		}
	}
	if n, _ := r.ReadRows(got); n != 0 {
		t.Fatalf("%d rows past the %d written", n, rows)
	}
}

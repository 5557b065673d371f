package rowio_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

var formats = []rowio.Format{rowio.JSONL, rowio.CSV, rowio.Parquet}

func sampleFrame() *rowio.Frame {
	return &rowio.Frame{Rows: 3, Cols: []rowio.Col{
		{Field: rowio.Field{Name: "id", Type: serving.Bytes}, Data: [][]byte{[]byte("a"), []byte(`b,"q"`), []byte("ü\n")}},
		{Field: rowio.Field{Name: "n", Type: serving.Int64}, Data: []int64{1, -2, 1 << 40}},
		{Field: rowio.Field{Name: "v", Type: serving.FP32, Width: 3}, Data: []float32{0.1, 2, 3, 4, 5.5, 6, 7, 8, -9.25}},
		{Field: rowio.Field{Name: "p", Type: serving.FP64}, Data: []float64{0.5, 1e-9, 3}},
		{Field: rowio.Field{Name: "ok", Type: serving.Bool}, Data: []bool{true, false, true}},
		{Field: rowio.Field{Name: "ts", Type: serving.Int64, Timestamp: true}, Data: []int64{1_700_000_000_123_456, 0, 42}},
	}}
}

func writeFile(t *testing.T, format rowio.Format, frames ...*rowio.Frame) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rows"+format.Ext())
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := rowio.NewWriter(format, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		if err := w.Write(fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readAll(t *testing.T, path string, fields []rowio.Field, n int) (cols []rowio.Col, bad []rowio.BadRow) {
	t.Helper()
	r, err := rowio.Open(path, 0, fields)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var all rowio.Frame
	for {
		var f rowio.Frame
		err := r.Read(&f, n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, f.Bad...)
		if all.Cols == nil {
			all.Cols = f.Cols
			continue
		}
		for i := range f.Cols {
			all.Cols[i].Data = appendAny(all.Cols[i].Data, f.Cols[i].Data)
		}
	}
	return all.Cols, bad
}

func appendAny(a, b any) any {
	v := reflect.AppendSlice(reflect.ValueOf(a), reflect.ValueOf(b))
	return v.Interface()
}

func TestRoundTrip(t *testing.T) {
	for _, format := range formats {
		t.Run(format.String(), func(t *testing.T) {
			want := sampleFrame()
			path := writeFile(t, format, want.Slice(0, 2), want.Slice(2, 3))
			for _, n := range []int{1, 2, 100} {
				got, bad := readAll(t, path, want.Fields(), n)
				if len(bad) > 0 {
					t.Fatalf("bad rows: %+v", bad)
				}
				if !reflect.DeepEqual(got, want.Cols) {
					t.Errorf("read %d at a time:\n got %v\nwant %v", n, got, want.Cols)
				}
			}
		})
	}
}

func TestSkipAndProgress(t *testing.T) {
	for _, format := range formats {
		t.Run(format.String(), func(t *testing.T) {
			path := writeFile(t, format, sampleFrame())
			fields := []rowio.Field{{Name: "n", Type: serving.Int64}}
			r, err := rowio.Open(path, 0, fields)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if k, err := r.Skip(2); k != 2 || err != nil {
				t.Fatalf("Skip(2) = %d, %v", k, err)
			}
			var f rowio.Frame
			if err := r.Read(&f, 10); err != nil {
				t.Fatal(err)
			}
			if f.Start != 2 || f.Len() != 1 || f.Cols[0].Data.([]int64)[0] != 1<<40 {
				t.Errorf("after Skip(2): start %d, %v", f.Start, f.Cols[0].Data)
			}
			if done, total := r.Progress(); total == 0 || done != total {
				t.Errorf("Progress at the end = %d of %d", done, total)
			}
			if k, _ := r.Skip(5); k != 0 {
				t.Errorf("Skip past the end = %d", k)
			}
			if err := r.Read(&f, 10); !errors.Is(err, io.EOF) {
				t.Errorf("Read at the end = %v, want io.EOF", err)
			}
		})
	}
}

func TestBadRows(t *testing.T) {
	fields := []rowio.Field{{Name: "id", Type: serving.Bytes}, {Name: "x", Type: serving.FP32, Width: 2}, {Name: "k", Type: serving.Int8}}
	cases := map[rowio.Format]string{
		rowio.JSONL: `{"id":"a","x":[1,2],"k":1}` + "\n\n" +
			`{"id":"b","x":[1],"k":1}` + "\n" + // short list
			`{"id":"c","x":[1,"z"],"k":1}` + "\n" + // not a number
			`{"id":"d","x":[1,2]}` + "\n" + // missing field
			`{"id":"e","x":[1,2],"k":300}` + "\n" + // out of range
			`not json` + "\n" +
			`{"id":7,"x":[3,4],"k":-1.0}` + "\n",
		rowio.CSV: "id,x_0,x_1,k\n" + "a,1,2,1\n" + "b,1,,1\n" + "c,1,z,1\n" + "d,1,2\n" + "e,1,2,300\n" + "f,1,2,1.5\n" + "7,3,4,-1\n",
	}
	for format, text := range cases {
		t.Run(format.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in"+format.Ext())
			os.WriteFile(path, []byte(text), 0o644)
			cols, bad := readAll(t, path, fields, 4)
			if len(bad) != 5 {
				t.Fatalf("%d bad rows, want 5: %+v", len(bad), bad)
			}
			for _, b := range bad {
				if b.Err == nil || b.Line == 0 || len(b.Raw) == 0 {
					t.Errorf("bad row without line, raw text or reason: %+v", b)
				}
			}
			if bad[0].Row != 1 || !strings.Contains(string(bad[0].Raw), "b") {
				t.Errorf("first bad row = %+v, want row 1 (b)", bad[0])
			}
			wantIDs := [][]byte{[]byte("a"), []byte("7")}
			if !reflect.DeepEqual(cols[0].Data, wantIDs) || !reflect.DeepEqual(cols[1].Data, []float32{1, 2, 3, 4}) || !reflect.DeepEqual(cols[2].Data, []int8{1, -1}) {
				t.Errorf("good rows = %v", cols)
			}
		})
	}
}

func TestMissingColumnFailsAtOpen(t *testing.T) {
	for _, format := range []rowio.Format{rowio.CSV, rowio.Parquet} {
		path := writeFile(t, format, sampleFrame())
		_, err := rowio.Open(path, 0, []rowio.Field{{Name: "nope", Type: serving.FP32}})
		if err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("%v: open with a missing column: %v", format, err)
		}
	}
}

func TestParquetRejectsGarbage(t *testing.T) {
	_, err := rowio.NewReader(rowio.Parquet, bytes.NewReader([]byte("PAR1 not really")), 15, nil)
	if serving.CodeOf(err) != serving.InvalidArgument {
		t.Errorf("garbage Parquet: %v", err)
	}
}

func TestSchemaRequest(t *testing.T) {
	md := serving.Metadata{Name: "m", Inputs: []serving.TensorSpec{
		{Name: "a", DataType: serving.FP32, Shape: []int64{-1, 2}},
		{Name: "b", DataType: serving.Int64, Shape: []int64{-1}},
	}}
	s := rowio.Schema{
		Inputs: []rowio.Input{{Name: "a", Columns: []string{"x", "y"}}, {Name: "b", Column: "n"}},
		Keys:   []rowio.Field{{Name: "id"}},
	}
	m, err := s.Bind(md)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := []rowio.Field{{Name: "x", Type: serving.FP32}, {Name: "y", Type: serving.FP32}, {Name: "n", Type: serving.Int64, Width: 1}, {Name: "id", Type: serving.Bytes}}
	if !reflect.DeepEqual(m.Fields(), wantFields) {
		t.Fatalf("Fields = %v, want %v", m.Fields(), wantFields)
	}
	f := &rowio.Frame{Rows: 2, Cols: []rowio.Col{
		{Field: wantFields[0], Data: []float32{1, 2}}, {Field: wantFields[1], Data: []float32{10, 20}},
		{Field: wantFields[2], Data: []int64{7, 8}}, {Field: wantFields[3], Data: [][]byte{[]byte("p"), []byte("q")}},
	}}
	req, err := m.Request(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Validate(req); err != nil {
		t.Fatal(err)
	}
	a, _ := req.Input("a")
	if !reflect.DeepEqual(a.Data(), []float32{1, 10, 2, 20}) {
		t.Errorf("a = %v, want rows interleaved", a.Data())
	}
	if b, _ := req.Input("b"); !reflect.DeepEqual(b.Shape, []int64{2}) {
		t.Errorf("b shape = %v, want [2] from the metadata", b.Shape)
	}
	if k := m.Keys(f); len(k) != 1 || k[0].Name != "id" {
		t.Errorf("Keys = %v", k)
	}
	bad := []rowio.Schema{
		{Inputs: []rowio.Input{{Name: "a", Columns: []string{"x"}}, {Name: "b", Column: "n"}}},                        // 1 column for 2 elements
		{Inputs: []rowio.Input{{Name: "zz", Column: "n"}}},                                                            // no such input
		{Inputs: []rowio.Input{{Name: "a", Columns: []string{"x", "y"}}, {Name: "b", Column: "x"}}},                   // x as FP32 and INT64
		{Inputs: []rowio.Input{{Name: "a", Column: "v", Width: 2, DataType: serving.FP64}, {Name: "b", Column: "n"}}}, // type
	}
	for i, s := range bad {
		if _, err := s.Bind(md); serving.CodeOf(err) != serving.InvalidArgument {
			t.Errorf("bad schema %d: %v", i, err)
		}
	}
	d, err := rowio.Schema{}.Bind(md)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Fields(); got[0] != (rowio.Field{Name: "a", Type: serving.FP32, Width: 2}) {
		t.Errorf("default schema fields = %v", got)
	}
}

// TestParquetRowGroups reads scalar columns (the column path) across row
// groups, after skips that land inside and across them, and compares with
// the row path (taken when a vector column is read too).
func TestParquetRowGroups(t *testing.T) {
	const n = 2*rowio.MaxRowGroupRows + 1234
	ids, xs, vs := make([]int64, n), make([]float32, n), make([]float32, 2*n)
	for i := range n {
		ids[i], xs[i], vs[2*i], vs[2*i+1] = int64(i), float32(i)/2, 1, 2
	}
	path := writeFile(t, rowio.Parquet, &rowio.Frame{Rows: n, Cols: []rowio.Col{
		{Field: rowio.Field{Name: "id", Type: serving.Int64}, Data: ids},
		{Field: rowio.Field{Name: "x", Type: serving.FP32}, Data: xs},
		{Field: rowio.Field{Name: "v", Type: serving.FP32, Width: 2}, Data: vs},
	}})
	scalar := []rowio.Field{{Name: "id", Type: serving.Int64}, {Name: "x", Type: serving.FP64}}
	for _, fields := range [][]rowio.Field{scalar, append(scalar, rowio.Field{Name: "v", Type: serving.FP32, Width: 2})} {
		r, err := rowio.Open(path, 0, fields)
		if err != nil {
			t.Fatal(err)
		}
		next := int64(0)
		for _, skip := range []int64{10, rowio.MaxRowGroupRows, 5000, 0, 40000} {
			k, err := r.Skip(skip)
			if err != nil || k != skip {
				t.Fatalf("%d fields: Skip(%d) = %d, %v", len(fields), skip, k, err)
			}
			next += skip
			var f rowio.Frame
			if err := r.Read(&f, 3000); err != nil {
				t.Fatal(err)
			}
			got := f.Cols[0].Data.([]int64)
			if f.Start != next || len(got) != 3000 || got[0] != next || got[2999] != next+2999 || f.Cols[1].Data.([]float64)[5] != float64(next+5)/2 {
				t.Fatalf("%d fields: after skipping to %d: start %d, ids %d..%d, x %v", len(fields), next, f.Start, got[0], got[len(got)-1], f.Cols[1].Data.([]float64)[:6])
			}
			next += 3000
		}
		k, _ := r.Skip(n)
		if next+k != n {
			t.Errorf("skipped to %d of %d", next+k, n)
		}
		r.Close()
	}
}

// TestParquetNulls reads a file written by another writer with optional
// columns: a null scalar makes its row bad, the rows around it stay, in
// order, on the column path and off it.
func TestParquetNulls(t *testing.T) {
	type row struct {
		ID int64    `parquet:"id"`
		X  *float32 `parquet:"x,optional"`
	}
	var rows []row
	for i := range 5000 {
		x := float32(i)
		r := row{ID: int64(i), X: &x}
		if i%1000 == 7 {
			r.X = nil
		}
		rows = append(rows, r)
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := rowio.NewReader(rowio.Parquet, bytes.NewReader(b.Bytes()), int64(b.Len()),
		[]rowio.Field{{Name: "id", Type: serving.Int64}, {Name: "x", Type: serving.FP32}})
	if err != nil {
		t.Fatal(err)
	}
	var bad []int64
	next := int64(0)
	for {
		var f rowio.Frame
		if err := r.Read(&f, 700); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, b := range f.Bad {
			bad = append(bad, b.Row)
		}
		ids, xs := f.Cols[0].Data.([]int64), f.Cols[1].Data.([]float32)
		for i, id := range ids {
			if id%1000 == 7 || float32(id) != xs[i] || f.RowNumber(i) != id || id < next {
				t.Fatalf("row %d: id %d x %v", f.RowNumber(i), id, xs[i])
			}
			next = id
		}
	}
	if !reflect.DeepEqual(bad, []int64{7, 1007, 2007, 3007, 4007}) {
		t.Errorf("bad rows %v", bad)
	}
}

// TestParquetVectorLengths reads a repeated column whose lists are not all
// of the field's width: those rows are bad, the others whole.
func TestParquetVectorLengths(t *testing.T) {
	type row struct {
		ID int64     `parquet:"id"`
		V  []float32 `parquet:"v"`
	}
	var rows []row
	for i := range 3000 {
		v := []float32{float32(i), -float32(i), 1}
		switch i % 500 {
		case 3:
			v = v[:2]
		case 4:
			v = append(v, 9)
		case 5:
			v = nil
		}
		rows = append(rows, row{ID: int64(i), V: v})
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b)
	w.Write(rows)
	w.Close()
	r, err := rowio.NewReader(rowio.Parquet, bytes.NewReader(b.Bytes()), int64(b.Len()),
		[]rowio.Field{{Name: "v", Type: serving.FP32, Width: 3}, {Name: "id", Type: serving.Int64}})
	if err != nil {
		t.Fatal(err)
	}
	var bad int
	for {
		var f rowio.Frame
		if err := r.Read(&f, 256); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, b := range f.Bad {
			if m := b.Row % 500; m < 3 || m > 5 {
				t.Errorf("row %d bad: %v", b.Row, b.Err)
			}
			bad++
		}
		ids, vs := f.Cols[1].Data.([]int64), f.Cols[0].Data.([]float32)
		for i, id := range ids {
			if vs[3*i] != float32(id) || vs[3*i+1] != -float32(id) || vs[3*i+2] != 1 {
				t.Fatalf("row %d: %v", id, vs[3*i:3*i+3])
			}
		}
	}
	if bad != 18 {
		t.Errorf("%d bad rows, want 18", bad)
	}
}

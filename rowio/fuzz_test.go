package rowio_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// fuzzFields cover a vector, the integer range checks, text and booleans.
var fuzzFields = []rowio.Field{
	{Name: "x", Type: serving.FP32, Width: 2},
	{Name: "k", Type: serving.Int8},
	{Name: "id", Type: serving.Bytes},
	{Name: "ok", Type: serving.Bool},
}

// decodeAll reads every row of text and checks what any input must give:
// no panic, every row either good or bad (with a reason), good rows whole
// (each column the same length), and a request the mapping accepts.
func decodeAll(t *testing.T, format rowio.Format, text []byte) {
	r, err := rowio.NewReader(format, bytes.NewReader(text), int64(len(text)), fuzzFields)
	if err != nil {
		return // a CSV without the columns: refused whole, cleanly
	}
	defer r.Close()
	m, err := rowio.Schema{Inputs: []rowio.Input{{Name: "x", Column: "x", Width: 2}}, Keys: fuzzFields[1:]}.Bind(serving.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		var f rowio.Frame
		err := r.Read(&f, 3)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			return // an I/O error of the reader itself
		}
		good := f.Len()
		if good+len(f.Bad) != f.Rows {
			t.Fatalf("%d good + %d bad != %d rows", good, len(f.Bad), f.Rows)
		}
		for _, c := range f.Cols {
			if c.Len() != good {
				t.Fatalf("column %s has %d rows, want %d", c.Name, c.Len(), good)
			}
		}
		for _, b := range f.Bad {
			if b.Err == nil {
				t.Fatalf("bad row %d without a reason", b.Row)
			}
		}
		req, err := m.Request(&f)
		if err != nil {
			t.Fatalf("Request of decoded rows: %v", err)
		}
		if good > 0 {
			if x, _ := req.Input("x"); x.Shape[0] != int64(good) || x.Shape[1] != 2 {
				t.Fatalf("x shape %v for %d rows", x.Shape, good)
			}
		}
	}
}

func FuzzJSONLRows(f *testing.F) {
	f.Add([]byte(`{"x":[1,2],"k":3,"id":"a","ok":true}` + "\n" + `{"x":[1e40,2],"k":300,"id":4,"ok":"yes"}`))
	f.Add([]byte(`{"x":[1],"k":-128,"id":"\u00e9\"","ok":false}` + "\n\n" + `[1,2]` + "\n" + `{"x":null}`))
	f.Add([]byte(`{"x":[1,2],"k":1.0,"id":"","ok":true,"x":[3,4]}`))
	f.Fuzz(func(t *testing.T, b []byte) { decodeAll(t, rowio.JSONL, b) })
}

func FuzzCSVRows(f *testing.F) {
	f.Add([]byte("x_0,x_1,k,id,ok\n1,2,3,a,true\n1,2,300,b,1\n"))
	f.Add([]byte("\ufeffid,ok,k,x_1,x_0\n\"a,\"\"b\",0,-1,2,NaN\nx,y\n"))
	f.Add([]byte("x_0,x_1,k,id,ok\n\"unterminated,1,2,3,4\n1,2,3,a,t\n"))
	f.Fuzz(func(t *testing.T, b []byte) { decodeAll(t, rowio.CSV, b) })
}

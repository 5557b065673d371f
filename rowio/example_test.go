package rowio_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// Reading CSV rows into a request for a model with an FP32 [-1, 2] input,
// two columns feeding it and an id carried along; a bad row is kept aside.
func Example() {
	md := servingtest.Linear(2).Metadata()
	m, _ := rowio.Schema{
		Inputs: []rowio.Input{{Name: "x", Columns: []string{"a", "b"}}},
		Keys:   []rowio.Field{{Name: "id"}},
	}.Bind(md)
	csv := "id,a,b\nr1,1,2\nr2,3,oops\nr3,5,6\n"
	r, _ := rowio.NewReader(rowio.CSV, strings.NewReader(csv), 0, m.Fields())
	var f rowio.Frame
	r.Read(&f, 100)
	req, _ := m.Request(&f)
	x, _ := req.Input("x")
	fmt.Println(x.Shape, x.Data())
	fmt.Println(f.Bad[0].Row, f.Bad[0].Line, f.Bad[0].Err)

	var out bytes.Buffer
	w, _ := rowio.NewWriter(rowio.JSONL, &out)
	w.Write(&rowio.Frame{Rows: 2, Cols: []rowio.Col{
		{Field: rowio.Field{Name: "id", Type: serving.Bytes}, Data: [][]byte{[]byte("r1"), []byte("r3")}},
		{Field: rowio.Field{Name: "y", Type: serving.FP32, Width: 2}, Data: []float32{3, 5, 11, 13}},
	}})
	w.Close()
	fmt.Print(out.String())
	// Output:
	// [2 2] [1 2 5 6]
	// 1 3 column "b": "oops" is not a number
	// {"id":"r1","y":[3,5]}
	// {"id":"r3","y":[11,13]}
}

package rowio_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// A model exported from a DataFrame by skl2onnx takes one [N, 1] input per
// column, of mixed datatypes. The default schema reads each from the
// column of its name, so the training CSV's layout scores as it is; a
// Schema renames columns that differ. A text cell is a STRING element as
// it is (even one that looks like a number), a missing number is a bad row.
func TestPerColumnInputs(t *testing.T) {
	md := serving.Metadata{Name: "loan", Inputs: []serving.TensorSpec{
		{Name: "age", DataType: serving.FP32, Shape: []int64{-1, 1}},
		{Name: "n_loans", DataType: serving.Int64, Shape: []int64{-1, 1}},
		{Name: "purpose", DataType: serving.Bytes, Shape: []int64{-1, 1}},
		{Name: "zip", DataType: serving.Bytes, Shape: []int64{-1}},
	}}
	csv := "id,age,n_loans,purpose,zip\n" +
		"a,35,1,car,75001\n" +
		"b,NaN,3,,01234\n" +
		"c,x,0,home,9\n" +
		"d,62,0,\"business, small\",10\n"
	for _, c := range []struct {
		name   string
		schema rowio.Schema
		csv    string
	}{
		{"default", rowio.Schema{Keys: []rowio.Field{{Name: "id"}}}, csv},
		{"renamed", rowio.Schema{
			Inputs: []rowio.Input{{Name: "age", Column: "Age"}, {Name: "n_loans", Column: "loans"},
				{Name: "purpose", Column: "purpose"}, {Name: "zip", Column: "zip"}},
			Keys: []rowio.Field{{Name: "id"}},
		}, strings.Replace(csv, "id,age,n_loans", "id,Age,loans", 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.schema.Bind(md)
			if err != nil {
				t.Fatal(err)
			}
			r, err := rowio.NewReader(rowio.CSV, strings.NewReader(c.csv), 0, m.Fields())
			if err != nil {
				t.Fatal(err)
			}
			var f rowio.Frame
			if err := r.Read(&f, 100); err != nil {
				t.Fatal(err)
			}
			if len(f.Bad) != 1 || f.Bad[0].Row != 2 {
				t.Fatalf("bad rows %+v, want row 2 (age x)", f.Bad)
			}
			req, err := m.Request(&f)
			if err != nil {
				t.Fatal(err)
			}
			if err := md.Validate(req); err != nil {
				t.Fatalf("the request does not fit the model: %v", err)
			}
			age, _ := req.Input("age")
			loans, _ := req.Input("n_loans")
			purpose, _ := req.Input("purpose")
			zip, _ := req.Input("zip")
			ages, _ := serving.Values[float32](age)
			ps, _ := purpose.Strings()
			zs, _ := zip.Strings()
			if !slices.Equal(age.Shape, []int64{3, 1}) || ages[0] != 35 || ages[1] == ages[1] || ages[2] != 62 {
				t.Errorf("age %v %v", age.Shape, ages)
			}
			if v, _ := serving.Values[int64](loans); !slices.Equal(v, []int64{1, 3, 0}) {
				t.Errorf("n_loans %v", v)
			}
			if !slices.Equal(ps, []string{"car", "", "business, small"}) || !slices.Equal(zs, []string{"75001", "01234", "10"}) {
				t.Errorf("purpose %q, zip %q", ps, zs)
			}
			if !slices.Equal(zip.Shape, []int64{3}) {
				t.Errorf("zip shape %v, want [3]", zip.Shape)
			}
		})
	}
}

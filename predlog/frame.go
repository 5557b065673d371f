package predlog

import (
	"slices"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// Columns a logged row has besides the model's inputs and outputs.
const (
	ColID        = "id"
	ColModel     = "model"
	ColVersion   = "model_version"
	ColTimestamp = "timestamp"
	ColError     = "error" // failed calls only
	ColCode      = "code"  // failed calls only
)

// Frame turns a record into rows: one row per row of the request when
// every input and output has the same dimension 0 (a batch), with each
// tensor's row as a vector column named after it (an output whose name
// an input or an id column has is prefixed "output_"); else one row
// holding each tensor whole, flattened. The inputs' columns are exactly
// what rowio.DefaultSchema reads, so a logged file replays through
// batch/job as it came.
func Frame(r Record) (*rowio.Frame, error) {
	all := slices.Concat(r.Inputs, r.Outputs)
	n := int64(-1)
	for _, t := range all {
		switch {
		case len(t.Shape) == 0 || t.Shape[0] < 1:
			n = -2
		case n == -1:
			n = t.Shape[0]
		case t.Shape[0] != n:
			n = -2
		}
	}
	flat := n < 1
	if flat {
		n = 1
	}
	f := &rowio.Frame{Rows: int(n)}
	text := func(name, v string) {
		d := make([][]byte, n)
		for i := range d {
			d[i] = []byte(v)
		}
		f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: name, Type: serving.Bytes}, Data: d})
	}
	text(ColID, r.ID)
	text(ColModel, r.Model)
	text(ColVersion, r.Version)
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = r.Time.UnixMicro()
	}
	f.Cols = append(f.Cols, rowio.Col{Field: rowio.Field{Name: ColTimestamp, Type: serving.Int64, Timestamp: true}, Data: ts})
	if r.Err != "" {
		text(ColError, r.Err)
		text(ColCode, r.Code.String())
	}
	taken := map[string]bool{ColID: true, ColModel: true, ColVersion: true, ColTimestamp: true, ColError: true, ColCode: true}
	for i, t := range all {
		name := t.Name
		if i >= len(r.Inputs) && taken[name] {
			name = "output_" + name
		}
		if taken[name] {
			return nil, serving.Errorf(serving.InvalidArgument, "predlog: two columns named %q", name)
		}
		taken[name] = true
		if flat {
			var err error
			if t, err = serving.FromSlice(t.Name, t.DataType, []int64{1, int64(t.Len())}, t.Data()); err != nil {
				return nil, err
			}
		}
		c, err := rowio.ColumnOf(name, t)
		if err != nil {
			return nil, err
		}
		f.Cols = append(f.Cols, c)
	}
	return f, nil
}

func dataBytes(c rowio.Col) int64 {
	if b, ok := c.Data.([][]byte); ok {
		var n int64
		for _, e := range b {
			n += int64(len(e)) + 4
		}
		return n
	}
	t, err := serving.FromSlice(c.Name, c.Type, []int64{int64(c.Len() * max(1, c.Width))}, c.Data)
	if err != nil {
		return 0
	}
	return int64(t.Len() * c.Type.Size())
}

package rowio

import (
	"slices"
	"strconv"

	"github.com/servekit/servekit/serving"
)

// Schema maps the columns of rows to a model's inputs and names the key
// columns carried through to the output. The zero Schema, bound to a
// model with Bind, reads each model input from the column of the same
// name (DefaultSchema).
type Schema struct {
	Inputs []Input
	// Keys are carried from each input row to its output row unchanged:
	// an id to join the predictions back on. A key whose Type is not set
	// is text (serving.Bytes).
	Keys []Field
}

// Input says where one model input comes from. Exactly one of Columns or
// Column is set.
type Input struct {
	// Name is the model's input.
	Name string
	// Columns are scalar columns, one element of the row each, in order:
	// 8 feature columns make an FP32 [rows, 8] input.
	Columns []string
	// Column is one column that holds Width elements per row (a list in
	// JSONL and Parquet, Column_0 … Column_{Width-1} in CSV; a scalar when
	// Width ≤ 1).
	Column string
	Width  int
	// DataType is the element type fed to the model; when unset, the
	// model's metadata says, else FP32.
	DataType serving.DataType
	// Shape is the shape of one row (the dims after the batch dim). When
	// nil, the model's metadata says (its dims after the first), else it
	// is [elements]. A non-nil empty Shape feeds [rows].
	Shape []int64
}

// DefaultSchema reads every input of md from the column of the same name,
// a vector of as many elements as one row of it holds: the layout that
// predlog writes, so logged traffic replays as it came. It fails for an
// input whose dims after the first are not all fixed.
func DefaultSchema(md serving.Metadata) (Schema, error) {
	var s Schema
	for _, in := range md.Inputs {
		if len(in.Shape) == 0 {
			return Schema{}, serving.Errorf(serving.InvalidArgument, "rowio: model %q input %q is a scalar: give a Schema", md.Name, in.Name)
		}
		w := 1
		for _, d := range in.Shape[1:] {
			if d < 0 {
				return Schema{}, serving.Errorf(serving.InvalidArgument, "rowio: model %q input %q %v has a dynamic dim after the first: give a Schema", md.Name, in.Name, in.Shape)
			}
			w *= int(d)
		}
		s.Inputs = append(s.Inputs, Input{Name: in.Name, Column: in.Name, Width: w})
	}
	if len(s.Inputs) == 0 {
		return Schema{}, serving.Errorf(serving.InvalidArgument, "rowio: model %q declares no inputs: give a Schema", md.Name)
	}
	return s, nil
}

// Mapping is a Schema bound to a model: it knows the columns to read and
// builds requests from frames of them. It is immutable and safe for
// concurrent use.
type Mapping struct {
	fields []Field
	inputs []boundInput
	keys   []int // field index of each key
	model  string
}

type boundInput struct {
	name     string
	dt       serving.DataType
	rowShape []int64
	cols     []int // field indexes; one vector or several scalars
}

// Bind checks s against md (the zero Metadata when the model does not
// describe itself) and fills in what s leaves to the model. A zero s is
// DefaultSchema(md).
func (s Schema) Bind(md serving.Metadata) (*Mapping, error) {
	if len(s.Inputs) == 0 {
		d, err := DefaultSchema(md)
		if err != nil {
			return nil, err
		}
		s.Inputs = d.Inputs
		s.Keys = slices.Clone(s.Keys)
	}
	m := &Mapping{model: md.Name}
	seen := map[string]int{}
	add := func(f Field) (int, error) {
		if i, ok := seen[f.Name]; ok {
			if m.fields[i] != f {
				return 0, serving.Errorf(serving.InvalidArgument, "rowio: column %q is used as both %s and %s", f.Name, describe(m.fields[i]), describe(f))
			}
			return i, nil
		}
		seen[f.Name] = len(m.fields)
		m.fields = append(m.fields, f)
		return len(m.fields) - 1, nil
	}
	for _, in := range s.Inputs {
		b, err := bindInput(in, md)
		if err != nil {
			return nil, err
		}
		if in.Column != "" {
			i, err := add(Field{Name: in.Column, Type: b.dt, Width: elements(b.rowShape)})
			if err != nil {
				return nil, err
			}
			b.cols = []int{i}
		}
		for _, c := range in.Columns {
			i, err := add(Field{Name: c, Type: b.dt})
			if err != nil {
				return nil, err
			}
			b.cols = append(b.cols, i)
		}
		m.inputs = append(m.inputs, b)
	}
	for _, k := range s.Keys {
		if k.Type == serving.InvalidType {
			k.Type = serving.Bytes
		}
		if k.Name == "" || !k.Type.Valid() {
			return nil, serving.Errorf(serving.InvalidArgument, "rowio: key %q: name and type required", k.Name)
		}
		i, err := add(k)
		if err != nil {
			return nil, err
		}
		m.keys = append(m.keys, i)
	}
	return m, nil
}

func bindInput(in Input, md serving.Metadata) (boundInput, error) {
	b := boundInput{name: in.Name, dt: in.DataType, rowShape: in.Shape}
	switch {
	case in.Name == "":
		return b, serving.Errorf(serving.InvalidArgument, "rowio: an input has no name")
	case (in.Column == "") == (len(in.Columns) == 0):
		return b, serving.Errorf(serving.InvalidArgument, "rowio: input %q: set exactly one of Column and Columns", in.Name)
	}
	n := len(in.Columns) // elements per row the schema gives
	if in.Column != "" {
		n = max(1, in.Width)
	}
	spec, described := md.Input(in.Name)
	if len(md.Inputs) > 0 && !described {
		return b, serving.Errorf(serving.InvalidArgument, "rowio: model %q has no input %q", md.Name, in.Name)
	}
	if b.dt == serving.InvalidType {
		b.dt = serving.FP32
		if described {
			b.dt = spec.DataType
		}
	}
	if b.rowShape == nil {
		b.rowShape = []int64{int64(n)}
		if described && len(spec.Shape) > 0 && !slices.Contains(spec.Shape[1:], -1) {
			b.rowShape = slices.Clone(spec.Shape[1:])
		}
	}
	if got := elements(b.rowShape); got != n {
		return b, serving.Errorf(serving.InvalidArgument, "rowio: input %q: one row is %v (%d elements), the schema gives %d", in.Name, b.rowShape, got, n)
	}
	if described && spec.DataType != b.dt {
		return b, serving.Errorf(serving.InvalidArgument, "rowio: input %q: schema says %v, model wants %v", in.Name, b.dt, spec.DataType)
	}
	return b, nil
}

func elements(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

func describe(f Field) string {
	s := f.Type.String()
	if f.Width > 1 {
		s += "×" + strconv.Itoa(f.Width)
	}
	return s
}

// Fields are the columns to read: the inputs' columns, then the keys.
func (m *Mapping) Fields() []Field { return slices.Clone(m.fields) }

// KeyFields are the key columns, in the schema's order.
func (m *Mapping) KeyFields() []Field {
	fs := make([]Field, len(m.keys))
	for i, k := range m.keys {
		fs[i] = m.fields[k]
	}
	return fs
}

// Request builds a request of f's good rows, whose columns are Fields()
// in order (as a Reader given Fields() fills them). An input read from one
// column shares its data; one read from several columns is a new slice.
func (m *Mapping) Request(f *Frame) (*serving.Request, error) {
	if len(f.Cols) != len(m.fields) {
		return nil, serving.Errorf(serving.InvalidArgument, "rowio: frame has %d columns, the mapping reads %d", len(f.Cols), len(m.fields))
	}
	rows := f.Len()
	req := &serving.Request{Model: m.model, Inputs: make([]serving.Tensor, len(m.inputs))}
	for i, in := range m.inputs {
		shape := append([]int64{int64(rows)}, in.rowShape...)
		var data any
		if len(in.cols) == 1 {
			data = f.Cols[in.cols[0]].Data
		} else {
			cols := make([]any, len(in.cols))
			for j, c := range in.cols {
				cols[j] = f.Cols[c].Data
			}
			data = interleave(in.dt, cols, rows)
		}
		t, err := serving.FromSlice(in.name, in.dt, shape, data)
		if err != nil {
			return nil, err
		}
		req.Inputs[i] = t
	}
	return req, nil
}

// Keys returns f's key columns, sharing their data.
func (m *Mapping) Keys(f *Frame) []Col {
	cs := make([]Col, len(m.keys))
	for i, k := range m.keys {
		cs[i] = f.Cols[k]
	}
	return cs
}

// interleave joins scalar columns into rows: row r is cols[0][r],
// cols[1][r], ….
func interleave(dt serving.DataType, cols []any, rows int) any {
	switch dt {
	case serving.FP32:
		return weave[float32](cols, rows)
	case serving.FP64:
		return weave[float64](cols, rows)
	case serving.Int64:
		return weave[int64](cols, rows)
	case serving.Int32:
		return weave[int32](cols, rows)
	case serving.Int16:
		return weave[int16](cols, rows)
	case serving.Int8:
		return weave[int8](cols, rows)
	case serving.Uint8:
		return weave[uint8](cols, rows)
	case serving.Uint16, serving.FP16, serving.BF16:
		return weave[uint16](cols, rows)
	case serving.Uint32:
		return weave[uint32](cols, rows)
	case serving.Uint64:
		return weave[uint64](cols, rows)
	case serving.Bool:
		return weave[bool](cols, rows)
	case serving.Bytes:
		return weave[[]byte](cols, rows)
	}
	return nil
}

func weave[T any](cols []any, rows int) []T {
	k := len(cols)
	out := make([]T, rows*k)
	for j, c := range cols {
		src := c.([]T)
		for r := range rows {
			out[r*k+j] = src[r]
		}
	}
	return out
}

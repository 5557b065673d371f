package oipjson

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// A V1 body has no shapes: each tensor's shape is what its nesting implies,
// and its rows are the instances. So nothing a V1 body says can size an
// allocation: every tensor is counted first (a pass that checks nesting and
// syntax and converts nothing) and then read into a slice of exactly that
// many elements. What a V1 request allocates is therefore its elements, at
// most 8 bytes of memory per 2 bytes of JSON (BYTES: 24 per 3), plus a
// little per input: V1 is an adapter, so two passes over its data cost less
// than any estimate could.

// DecodeV1 builds a request from a V1 body ({"instances": [...]} or
// {"inputs": ...}), reading tensors as md's inputs declare them (a model
// without metadata gets datatypes guessed from the values: strings BYTES,
// true/false BOOL, numbers FP32). rows reports the row format (answer
// with predictions split by row 0) rather than columnar. Like the V2
// decoder it allocates in proportion to body and keeps lim; errors are
// InvalidArgument.
func DecodeV1(body []byte, md serving.Metadata, lim oip.Limits) (req *serving.Request, rows bool, err error) {
	return decodeV1(body, md, limitsOf(lim))
}

func decodeV1(body []byte, md serving.Metadata, lim limits) (*serving.Request, bool, error) {
	if !utf8.Valid(body) {
		return nil, false, badRequest("request JSON is not valid UTF-8")
	}
	instances, inputs, err := v1Envelope(body)
	if err != nil {
		return nil, false, err
	}
	v := v1Decoder{lim: lim, md: md, b: body}
	switch {
	case instances >= 0 && inputs >= 0:
		return nil, false, badRequest(`give "instances" or "inputs", not both`)
	case instances >= 0:
		req, err := v.instances(instances)
		return req, true, err
	case inputs >= 0:
		req, err := v.columns(inputs)
		return req, false, err
	}
	return nil, false, badRequest(`the body needs "instances" or "inputs"`)
}

// v1Envelope checks the whole body's syntax and finds the values of
// "instances" and "inputs" (-1 when absent or null). Keys match as
// encoding/json matches struct fields; a repeated key's last value wins.
func v1Envelope(body []byte) (instances, inputs int, err error) {
	s := scanner{b: body}
	instances, inputs = -1, -1
	switch s.next() {
	case 0:
		err = s.syntax("unexpected end of JSON input")
	case '{':
		err = s.object(0, func(k []byte, esc bool) error {
			at := s.i
			if s.b[at] == 'n' {
				at = -1 // null: as if absent
			}
			switch canonKey(k, esc, "instances", "inputs") {
			case "instances":
				instances = at
			case "inputs":
				inputs = at
			}
			return s.skip(1)
		})
	default:
		if err = s.skip(0); err == nil && !s.literalAt(0, "null") {
			err = badRequest("malformed request JSON: the body must be an object")
		}
	}
	if err == nil {
		if s.ws(); s.i != len(s.b) {
			err = s.syntax("invalid character after top-level value")
		}
	}
	if se, ok := err.(*syntaxError); ok {
		err = badRequest("malformed request JSON: %v", se)
	}
	return instances, inputs, err
}

type v1Decoder struct {
	lim limits
	md  serving.Metadata
	b   []byte  // the body, whose syntax v1Envelope checked
	at  scanner // reads one value of b at a time, without an allocation each
}

// value returns the scanner at offset i.
func (v *v1Decoder) value(i int) *scanner {
	v.at = scanner{b: v.b, i: i}
	return &v.at
}

// soleInput is the input a bare (unnamed) value at b[at:] feeds.
func (v *v1Decoder) soleInput(at int) (serving.TensorSpec, error) {
	switch len(v.md.Inputs) {
	case 1:
		return v.md.Inputs[0], nil
	case 0:
		return serving.TensorSpec{Name: "input", DataType: guessType(v.b[at:])}, nil
	}
	return serving.TensorSpec{}, badRequest("the model has %d inputs: name them in an object", len(v.md.Inputs))
}

func (v *v1Decoder) specFor(name string, at int) serving.TensorSpec {
	if s, ok := v.md.Input(name); ok {
		return s
	}
	return serving.TensorSpec{Name: name, DataType: guessType(v.b[at:])} // the model rejects unknown names
}

// guessType picks a datatype from the first value when the model has no
// metadata: strings are BYTES, true/false BOOL, numbers FP32.
func guessType(raw []byte) serving.DataType {
	raw = bytes.TrimLeft(raw, " \t\r\n[")
	switch {
	case len(raw) == 0:
		return serving.FP32
	case raw[0] == '"':
		return serving.Bytes
	case raw[0] == 't' || raw[0] == 'f':
		return serving.Bool
	}
	return serving.FP32
}

// tensor reads the value at b[at:] as a whole tensor of spec, its shape the
// nesting's (see fitRows).
func (v *v1Decoder) tensor(spec serving.TensorSpec, at int) (serving.Tensor, error) {
	s := scanner{b: v.b, i: at}
	t, err := readData(&s, spec.Name, spec.DataType, nil, v.lim.elements, &sizing{})
	if err != nil {
		return serving.Tensor{}, badRequest("input %q: %v", spec.Name, err)
	}
	t.Shape = fitRows(t.Shape, spec)
	return t, nil
}

// fitRows gives rows the input's own row shape when they hold as many
// elements as one row of it but nest differently: a V1 body has no shapes,
// and a model exported from a DataFrame by skl2onnx takes one [N, 1] input
// per column, which KServe V1 clients send as {"instances": [{"age": 42,
// ...}]} or {"inputs": {"age": [42, 35]}} (rows of one scalar each). Any
// other shape is left for the model's validation to refuse.
func fitRows(shape []int64, spec serving.TensorSpec) []int64 {
	if len(shape) == 0 || len(spec.Shape) == 0 || len(shape) == len(spec.Shape) {
		return shape
	}
	per, want := int64(1), int64(1)
	for _, d := range shape[1:] {
		per *= d
	}
	for _, d := range spec.Shape[1:] {
		if d < 0 {
			return shape
		}
		want *= d
	}
	if per != want {
		return shape
	}
	return append([]int64{shape[0]}, spec.Shape[1:]...)
}

// columns decodes {"inputs": value} (the sole input) or {"inputs": {name:
// value, ...}}, in name order.
func (v *v1Decoder) columns(at int) (*serving.Request, error) {
	req := &serving.Request{}
	if v.b[at] != '{' {
		spec, err := v.soleInput(at)
		if err != nil {
			return nil, err
		}
		t, err := v.tensor(spec, at)
		if err != nil {
			return nil, err
		}
		req.Inputs = []serving.Tensor{t}
		return req, nil
	}
	var m members
	if err := m.read(&scanner{b: v.b, i: at}, v.lim.inputs, "inputs"); err != nil {
		return nil, err
	}
	req.Inputs = make([]serving.Tensor, 0, len(m.list))
	for _, e := range m.list {
		t, err := v.tensor(v.specFor(strings.Clone(e.name), e.at), e.at)
		if err != nil {
			return nil, err
		}
		req.Inputs = append(req.Inputs, t)
	}
	return req, nil
}

// instances decodes {"instances": [...]}: unnamed instances are the rows of
// the sole input, so the whole list is that tensor; named instances (objects)
// give a row of each input they name.
func (v *v1Decoder) instances(at int) (*serving.Request, error) {
	s := scanner{b: v.b, i: at}
	if s.b[at] != '[' {
		return nil, badRequest("instances must be a list")
	}
	n, named := 0, false
	err := s.array(1, func(i int) error {
		if i >= v.lim.instances {
			return badRequest("more than %d instances", v.lim.instances)
		}
		if obj := s.b[s.i] == '{'; i == 0 {
			named = obj
		} else if obj != named {
			return badRequest("instance %d: mix of named and unnamed instances", i)
		}
		n++
		return s.skip(2)
	})
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, badRequest("instances is empty")
	case !named:
		spec, err := v.soleInput(at)
		if err != nil {
			return nil, err
		}
		t, err := v.tensor(spec, at)
		if err != nil {
			return nil, err
		}
		return &serving.Request{Inputs: []serving.Tensor{t}}, nil
	}
	return v.namedInstances(at, n)
}

// namedInstances stacks the instances' members into one tensor per name, in
// two passes: the first learns each input's datatype, row shape and element
// count (and checks every row against the first), the second reads the
// values into slices of exactly that size.
func (v *v1Decoder) namedInstances(at, n int) (*serving.Request, error) {
	var cols []*v1Column
	byName := map[string]*v1Column{}
	var m members
	each := func(fill bool) error {
		s := scanner{b: v.b, i: at}
		return s.array(1, func(int) error {
			if err := m.read(&s, v.lim.inputs, "instance"); err != nil {
				return err
			}
			for _, e := range m.list {
				c := byName[e.name]
				if fill {
					if err := c.vals.read(v.value(e.at)); err != nil {
						return badRequest("input %q: %v", c.spec.Name, err)
					}
					continue
				}
				if c == nil {
					if len(cols) >= v.lim.inputs {
						return badRequest("more than %d inputs", v.lim.inputs)
					}
					name := strings.Clone(e.name) // e.name may be a view of the body
					c = &v1Column{spec: v.specFor(name, e.at)}
					if _, ok := codecFor(c.spec.DataType); !ok {
						return badRequest("input %q: unsupported datatype %v", name, c.spec.DataType)
					}
					byName[name] = c
					cols = append(cols, c)
				}
				if err := c.count(v.value(e.at), v.lim.elements); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := each(false); err != nil {
		return nil, err
	}
	for _, c := range cols {
		if c.rows != int64(n) {
			return nil, badRequest("input %q is in %d of %d instances", c.spec.Name, c.rows, n)
		}
		c.alloc()
	}
	if err := each(true); err != nil {
		return nil, err
	}
	req := &serving.Request{Inputs: make([]serving.Tensor, len(cols))}
	for i, c := range cols {
		t, err := c.tensor()
		if err != nil {
			return nil, badRequest("input %q: %v", c.spec.Name, err)
		}
		req.Inputs[i] = t
	}
	return req, nil
}

// members are an object's members in name order, a repeated name's last
// value only, as encoding/json decodes an object into a map. The list is
// scratch, reused object after object.
type members struct {
	list []member
}

type member struct {
	name string // a view of the body unless the key had escapes
	at   int    // the value's offset
	seq  int    // position in the object, so the last of a repeated name wins
}

// read reads the object at s.i (anything else is an error naming what).
func (m *members) read(s *scanner, most int, what string) error {
	if s.b[s.i] != '{' {
		return badRequest("%s: want an object of inputs by name", what)
	}
	m.list = m.list[:0]
	err := s.object(2, func(k []byte, esc bool) error {
		if len(m.list) >= most {
			return badRequest("%s: more than %d members", what, most)
		}
		name := str(k)
		if esc {
			name = string(unescape(k))
		}
		m.list = append(m.list, member{name: name, at: s.i, seq: len(m.list)})
		return s.skip(3)
	})
	if err != nil {
		return err
	}
	slices.SortFunc(m.list, func(a, b member) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return b.seq - a.seq // the last first
	})
	m.list = slices.CompactFunc(m.list, func(a, b member) bool { return a.name == b.name })
	return nil
}

// v1Column is one input of named instances: its rows' shape and count, then
// its values.
type v1Column struct {
	spec  serving.TensorSpec
	rows  int64
	elems int64
	dims  [maxDepth]int64 // of the first row
	rank  int
	vals  column
}

// count checks one row at s.i against the first and counts it.
func (c *v1Column) count(s *scanner, most int64) error {
	w, err := s.walk(most-c.elems, true)
	if err != nil {
		return badRequest("input %q: %v", c.spec.Name, err)
	}
	dims, rank := w.dimsOf()
	if c.rows == 0 {
		c.dims, c.rank = dims, rank
	} else if rank != c.rank || dims != c.dims {
		// Clones, so that the arrays stay on the stack for every good row.
		return badRequest("instances of %q differ in shape: %v and %v", c.spec.Name, slices.Clone(dims[:rank]), slices.Clone(c.dims[:c.rank]))
	}
	c.rows++
	c.elems += w.n
	return nil
}

func (c *v1Column) alloc() {
	codec, _ := codecFor(c.spec.DataType) // checked when the column was made
	c.vals = codec.column(c.elems)
}

func (c *v1Column) tensor() (serving.Tensor, error) {
	shape := make([]int64, 1+c.rank)
	shape[0] = c.rows
	copy(shape[1:], c.dims[:c.rank])
	return c.vals.tensor(c.spec.Name, fitRows(shape, c.spec))
}

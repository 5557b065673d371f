package onnx

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// What servekit reads of an ONNX model itself. ONNX Runtime's C API tells
// the kind of an output (tensor, sequence, map) but not what is inside a
// sequence or a map, nor which operator made it, nor a classifier's class
// labels; the model's protobuf does. Only the main graph's nodes and
// outputs are read, from an io.ReaderAt, so the weights (initializers, most
// of a big model's bytes) are skipped without being read.
//
// Field numbers are onnx.proto's (ModelProto.graph = 7, GraphProto.node = 1,
// .output = 12, NodeProto.input = 1, .output = 2, .op_type = 4,
// .attribute = 5, .domain = 7; ValueInfoProto.name = 1, .type = 2, ...).

// section is a byte range [off, end) of the model.
type section struct{ off, end int64 }

// graph is the part of a model's main graph servekit looks at.
type graph struct {
	field   section // the ModelProto.graph field: tag, length and body
	body    section // its body
	nodes   []node
	inputs  []graphValue
	outputs []graphValue
}

// node is one operator of the main graph.
type node struct {
	op, domain      string
	inputs, outputs []string
	// labels are the class labels of a classifier or ZipMap
	// (classlabels_strings, or classlabels_ints / _int64s in decimal).
	labels []string
	field  section
}

// graphValue is one graph output as the model declares it.
type graphValue struct {
	name  string
	typ   valueType
	field section
}

// valueType is an ONNX TypeProto: a tensor, sequence, map, optional or
// sparse tensor. elem is the element type of a tensor or sparse tensor and
// the key type of a map; inner is what a sequence or optional holds or a
// map's value type.
type valueType struct {
	kind  valueKindOf
	elem  int32
	inner *valueType
}

type valueKindOf uint8

const (
	kindUnknown valueKindOf = iota
	kindTensor
	kindSequence
	kindMap
	kindOptional
	kindSparse
)

// String writes the type as ONNX's documentation does:
// seq(map(int64,tensor(float))).
func (t *valueType) String() string {
	if t == nil {
		return "unknown"
	}
	switch t.kind {
	case kindTensor:
		return "tensor(" + elemName(t.elem) + ")"
	case kindSparse:
		return "sparse_tensor(" + elemName(t.elem) + ")"
	case kindSequence:
		return "seq(" + t.inner.String() + ")"
	case kindOptional:
		return "optional(" + t.inner.String() + ")"
	case kindMap:
		return "map(" + elemName(t.elem) + "," + t.inner.String() + ")"
	}
	return "unknown"
}

// ONNX element types (TensorProto.DataType) servekit names in messages.
const (
	elemFloat  = 1
	elemInt64  = 7
	elemString = 8
	elemDouble = 11
)

var elemNames = [...]string{
	1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
	9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
	16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
	21: "uint4", 22: "int4", 23: "float4e2m1",
}

func elemName(e int32) string {
	if e > 0 && int(e) < len(elemNames) && elemNames[e] != "" {
		return elemNames[e]
	}
	return "type" + strconv.Itoa(int(e))
}

// errNoGraph is returned for a model without a main graph.
var errNoGraph = errors.New("the model has no graph")

// readGraph reads the main graph's nodes and outputs from a serialised
// ModelProto of size bytes.
func readGraph(r io.ReaderAt, size int64) (*graph, error) {
	s := skimmer{r: r}
	g := &graph{}
	err := s.fields(section{0, size}, func(num protowire.Number, typ protowire.Type, field, body section) error {
		if num == 7 && typ == protowire.BytesType {
			g.field, g.body = field, body
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the model: %w", err)
	}
	if g.body == (section{}) {
		return nil, errNoGraph
	}
	err = s.fields(g.body, func(num protowire.Number, typ protowire.Type, field, body section) error {
		if typ != protowire.BytesType || (num != 1 && num != 11 && num != 12) {
			return nil // initializers and the rest are skipped unread
		}
		b, err := s.read(body)
		if err != nil {
			return err
		}
		if num == 1 {
			n, err := parseNode(b)
			n.field = field
			g.nodes = append(g.nodes, n)
			return err
		}
		v, err := parseValueInfo(b)
		v.field = field
		if num == 11 {
			g.inputs = append(g.inputs, v)
		} else {
			g.outputs = append(g.outputs, v)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the graph: %w", err)
	}
	return g, nil
}

// producer returns the node that writes value name, or nil.
func (g *graph) producer(name string) *node {
	for i := range g.nodes {
		for _, o := range g.nodes[i].outputs {
			if o == name {
				return &g.nodes[i]
			}
		}
	}
	return nil
}

// consumed reports whether some node reads value name.
func (g *graph) consumed(name string) bool {
	for i := range g.nodes {
		for _, in := range g.nodes[i].inputs {
			if in == name {
				return true
			}
		}
	}
	return false
}

// output returns the declared graph output name, or nil.
func (g *graph) output(name string) *graphValue { return findValue(g.outputs, name) }

// declaredInput returns the declared graph input name, or nil; g may be nil.
func (g *graph) declaredInput(name string) *graphValue {
	if g == nil {
		return nil
	}
	return findValue(g.inputs, name)
}

func findValue(vs []graphValue, name string) *graphValue {
	for i := range vs {
		if vs[i].name == name {
			return &vs[i]
		}
	}
	return nil
}

// skimmer walks protobuf fields through an io.ReaderAt, reading only tags
// and lengths until asked for a body.
type skimmer struct {
	r   io.ReaderAt
	buf [2 * binaryMaxVarint]byte
}

const binaryMaxVarint = 10

// fields calls fn for each field in sec: its number, wire type, the whole
// field and, for a length-delimited one, its body.
func (s *skimmer) fields(sec section, fn func(num protowire.Number, typ protowire.Type, field, body section) error) error {
	for off := sec.off; off < sec.end; {
		n, err := s.r.ReadAt(s.buf[:min(int64(len(s.buf)), sec.end-off)], off)
		if n == 0 && err != nil {
			return err
		}
		head := s.buf[:n]
		num, typ, tl := protowire.ConsumeTag(head)
		if tl < 0 {
			return protowire.ParseError(tl)
		}
		var body section
		var l int
		switch typ {
		case protowire.BytesType:
			v, vl := protowire.ConsumeVarint(head[tl:])
			if vl < 0 {
				return protowire.ParseError(vl)
			}
			start := off + int64(tl+vl)
			if v > uint64(sec.end-start) {
				return fmt.Errorf("field %d at byte %d claims %d bytes, %d left", num, off, v, sec.end-start)
			}
			body = section{start, start + int64(v)}
			l = tl + vl + int(v)
		case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type:
			vl := protowire.ConsumeFieldValue(num, typ, head[tl:])
			if vl < 0 {
				return protowire.ParseError(vl)
			}
			l = tl + vl
		default: // groups: onnx.proto has none
			return fmt.Errorf("field %d at byte %d has wire type %d, which ONNX does not use", num, off, typ)
		}
		field := section{off, off + int64(l)}
		if err := fn(num, typ, field, body); err != nil {
			return err
		}
		off = field.end
	}
	return nil
}

// read returns the bytes of sec.
func (s *skimmer) read(sec section) ([]byte, error) {
	b := make([]byte, sec.end-sec.off)
	if _, err := s.r.ReadAt(b, sec.off); err != nil && !(errors.Is(err, io.EOF) && len(b) > 0) {
		return nil, err
	}
	return b, nil
}

// eachField calls fn for every field of an in-memory message; v holds a
// varint or fixed value, b a length-delimited body.
func eachField(msg []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(msg)
			v = uint64(u)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		default:
			return fmt.Errorf("field %d has wire type %d, which ONNX does not use", num, typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if err := fn(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

func parseNode(b []byte) (node, error) {
	var n node
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, body []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(body))
		case 2:
			n.outputs = append(n.outputs, string(body))
		case 4:
			n.op = string(body)
		case 7:
			n.domain = string(body)
		case 5:
			labels, err := classLabels(body)
			if labels != nil {
				n.labels = labels
			}
			return err
		}
		return nil
	})
	return n, err
}

// classLabels reads an AttributeProto and returns its values when it is a
// classifier's or ZipMap's class labels, else nil.
func classLabels(attr []byte) ([]string, error) {
	var name string
	var strs []string
	var ints []int64
	err := eachField(attr, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			name = string(b)
		case num == 9 && typ == protowire.BytesType: // strings
			strs = append(strs, string(b))
		case num == 8 && typ == protowire.VarintType: // ints, unpacked
			ints = append(ints, int64(v))
		case num == 8 && typ == protowire.BytesType: // ints, packed
			for len(b) > 0 {
				x, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return protowire.ParseError(n)
				}
				ints = append(ints, int64(x))
				b = b[n:]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch name {
	case "classlabels_strings":
		return append(make([]string, 0, len(strs)), strs...), nil
	case "classlabels_ints", "classlabels_int64s":
		out := make([]string, len(ints))
		for i, x := range ints {
			out[i] = strconv.FormatInt(x, 10)
		}
		return out, nil
	}
	return nil, nil
}

func parseValueInfo(b []byte) (graphValue, error) {
	var v graphValue
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, body []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			v.name = string(body)
		case num == 2 && typ == protowire.BytesType:
			t, err := parseType(body, 0)
			v.typ = t
			return err
		}
		return nil
	})
	return v, err
}

// parseType reads a TypeProto. depth bounds the nesting a hostile file
// could use to exhaust the stack.
func parseType(b []byte, depth int) (valueType, error) {
	if depth > 16 {
		return valueType{}, errors.New("type nested more than 16 deep")
	}
	var t valueType
	err := eachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, body []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1, 8: // tensor_type, sparse_tensor_type: elem_type = 1
			t.kind = kindTensor
			if num == 8 {
				t.kind = kindSparse
			}
			return eachField(body, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == 1 && typ == protowire.VarintType {
					t.elem = int32(v)
				}
				return nil
			})
		case 4, 9: // sequence_type, optional_type: elem_type = 1
			t.kind = kindSequence
			if num == 9 {
				t.kind = kindOptional
			}
			return eachField(body, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if num == 1 && typ == protowire.BytesType {
					in, err := parseType(b, depth+1)
					t.inner = &in
					return err
				}
				return nil
			})
		case 5: // map_type: key_type = 1, value_type = 2
			t.kind = kindMap
			return eachField(body, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					t.elem = int32(v)
				case num == 2 && typ == protowire.BytesType:
					in, err := parseType(b, depth+1)
					t.inner = &in
					return err
				}
				return nil
			})
		}
		return nil
	})
	return t, err
}

// zipMapOf returns the ZipMap node that writes output name, when the output
// is a sequence of maps from int64 or string keys to float that the node
// writes straight from its input, with one label per column.
func (g *graph) zipMapOf(name string) *node {
	n := g.producer(name)
	if n == nil || n.op != "ZipMap" || n.domain != mlDomain || len(n.inputs) != 1 || len(n.labels) == 0 {
		return nil
	}
	return n
}

const mlDomain = "ai.onnx.ml"

// classifierOps are the ai.onnx.ml operators whose second output is one
// score per class, in the order of their class labels.
var classifierOps = []string{"LinearClassifier", "TreeEnsembleClassifier", "SVMClassifier"}

// passThroughOps keep the columns of their input where they are: a
// classifier's scores seen through them are still one column per class.
var passThroughOps = []string{"Identity", "Cast", "Normalizer", "Softmax"}

// labelsOf traces output name back through ops that keep its columns to a
// classifier's scores and returns that classifier's class labels, or nil.
func (g *graph) labelsOf(name string) []string {
	for range len(g.nodes) + 1 { // a graph is acyclic; the bound guards a malformed one
		n := g.producer(name)
		if n == nil {
			return nil
		}
		switch {
		case n.domain == mlDomain && contains(classifierOps, n.op) && len(n.outputs) > 1 && n.outputs[1] == name:
			return n.labels
		case contains(passThroughOps, n.op) && len(n.inputs) > 0 && (n.domain == "" || n.domain == "ai.onnx" || n.domain == mlDomain):
			name = n.inputs[0]
		default:
			return nil
		}
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

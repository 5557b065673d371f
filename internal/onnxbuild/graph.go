package onnxbuild

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// IRVersion is the ONNX IR version written into every model: that of
// ONNX 1.12, whose onnx.proto this package follows. ONNX Runtime reads it
// and everything older.
const IRVersion = 8

// DefaultOpset is the default-domain opset of the ready-made models, the
// one ONNX 1.12 shipped with IR 8. It covers every type and operator used
// here, BFloat16 Identity included.
const DefaultOpset = 17

// Producer is the producer_name of every model, so a model found on disk
// can be traced back to this package.
const Producer = "servekit-onnxbuild"

// ErrInvalidGraph wraps every mistake [Graph.Model] finds in a graph.
var ErrInvalidGraph = errors.New("onnxbuild: invalid graph")

// Graph collects the inputs, initializers, nodes and outputs of one ONNX
// graph. Methods record what they are given and never fail; [Graph.Model]
// checks everything at once so a test reads as a plain list of statements.
// The graph keeps the slices passed to it until Model returns.
type Graph struct {
	name     string
	inputs   []valueInfo
	outputs  []valueInfo
	inits    []*TensorData
	nodes    []node
	metadata [][2]string
}

type valueInfo struct {
	name string
	elem ElemType
	dims []int64
}

type node struct {
	op      string
	inputs  []string
	outputs []string
	attrs   []Attr
}

// NewGraph starts an empty graph; name is the graph's name in the model.
func NewGraph(name string) *Graph {
	return &Graph{name: name}
}

// Input declares a graph input. A negative dim is dynamic and is written as
// a named dim_param: "batch" for dim 0, "d1", "d2"… for the others, so
// inputs and outputs that share a dynamic batch share its name.
func (g *Graph) Input(name string, t ElemType, dims ...int64) {
	g.inputs = append(g.inputs, valueInfo{name, t, slices.Clone(dims)})
}

// Output declares a graph output, with dims as in [Graph.Input]. It must
// name an input, an initializer or a node output.
func (g *Graph) Output(name string, t ElemType, dims ...int64) {
	g.outputs = append(g.outputs, valueInfo{name, t, slices.Clone(dims)})
}

// Initializer adds a constant tensor (weights); data takes the forms listed
// on [TensorData].
func (g *Graph) Initializer(name string, t ElemType, dims []int64, data any) {
	g.inits = append(g.inits, &TensorData{Name: name, Elem: t, Dims: slices.Clone(dims), Data: data})
}

// Node appends a default-domain operator. Nodes must come in topological
// order, as ONNX requires: an input names a value declared before it. An
// empty input name marks an omitted optional input.
func (g *Graph) Node(op string, inputs, outputs []string, attrs ...Attr) {
	g.nodes = append(g.nodes, node{op, slices.Clone(inputs), slices.Clone(outputs), attrs})
}

// Metadata adds a key/value pair to the model's metadata_props, which ONNX
// Runtime reports as custom metadata.
func (g *Graph) Metadata(key, value string) {
	g.metadata = append(g.metadata, [2]string{key, value})
}

// Model checks the graph and serialises it as a ModelProto importing the
// default domain at the given opset.
func (g *Graph) Model(opset int64) ([]byte, error) {
	if err := g.check(opset); err != nil {
		return nil, err
	}
	graph, err := g.encode()
	if err != nil {
		return nil, err
	}
	var m []byte
	m = appendInt(m, 1, IRVersion)
	m = appendString(m, 2, Producer)
	m = appendBytes(m, 7, graph)
	var opsetID []byte
	opsetID = appendString(opsetID, 1, "")
	opsetID = appendInt(opsetID, 2, opset)
	m = appendBytes(m, 8, opsetID)
	for _, kv := range g.metadata {
		var e []byte
		e = appendString(e, 1, kv[0])
		e = appendString(e, 2, kv[1])
		m = appendBytes(m, 14, e)
	}
	return m, nil
}

// check reports every problem it finds, not just the first, so one failed
// test run shows the whole list.
func (g *Graph) check(opset int64) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidGraph}, args...)...))
	}
	if opset <= 0 {
		bad("opset %d", opset)
	}
	defined := map[string]string{} // value name → who defines it
	define := func(name, by string) {
		switch prev, dup := defined[name]; {
		case name == "":
			bad("%s has an empty name", by)
		case dup:
			bad("%s redefines %q, already defined by %s", by, name, prev)
		default:
			defined[name] = by
		}
	}
	for _, in := range g.inputs {
		if !in.elem.Valid() {
			bad("input %q: unsupported element type %v", in.name, in.elem)
		}
		define(in.name, "input")
	}
	for _, t := range g.inits {
		define(t.Name, "initializer")
	}
	for i, n := range g.nodes {
		by := fmt.Sprintf("node %d (%s)", i, n.op)
		if n.op == "" {
			bad("node %d has no operator", i)
		}
		for _, in := range n.inputs {
			if _, ok := defined[in]; in != "" && !ok {
				bad("%s reads %q, which nothing defined before it", by, in)
			}
		}
		if len(n.outputs) == 0 {
			bad("%s has no outputs", by)
		}
		for _, out := range n.outputs {
			if out != "" { // an omitted optional output
				define(out, by)
			}
		}
	}
	seen := map[string]bool{}
	for _, out := range g.outputs {
		if !out.elem.Valid() {
			bad("output %q: unsupported element type %v", out.name, out.elem)
		}
		if _, ok := defined[out.name]; !ok {
			bad("output %q is not defined by any input, initializer or node", out.name)
		}
		if seen[out.name] {
			bad("output %q is declared twice", out.name)
		}
		seen[out.name] = true
	}
	if len(g.outputs) == 0 {
		bad("graph %q has no outputs", g.name)
	}
	return errors.Join(errs...)
}

// encode writes the GraphProto.
func (g *Graph) encode() ([]byte, error) {
	var b []byte
	for i, n := range g.nodes {
		nb, err := n.encode(i)
		if err != nil {
			return nil, err
		}
		b = appendBytes(b, 1, nb)
	}
	b = appendString(b, 2, g.name)
	for _, t := range g.inits {
		tb, err := EncodeTensor(t)
		if err != nil {
			return nil, fmt.Errorf("%w: initializer: %w", ErrInvalidGraph, err)
		}
		b = appendBytes(b, 5, tb)
	}
	for _, in := range g.inputs {
		b = appendBytes(b, 11, in.encode())
	}
	for _, out := range g.outputs {
		b = appendBytes(b, 12, out.encode())
	}
	return b, nil
}

// encode writes a ValueInfoProto with a tensor TypeProto.
func (v valueInfo) encode() []byte {
	var shape []byte
	for i, d := range v.dims {
		var dim []byte
		if d >= 0 {
			dim = appendInt(dim, 1, d)
		} else {
			dim = appendString(dim, 2, dimParam(i))
		}
		shape = appendBytes(shape, 1, dim)
	}
	var tensor []byte
	tensor = appendInt(tensor, 1, int64(v.elem))
	tensor = appendBytes(tensor, 2, shape)
	var typ []byte
	typ = appendBytes(typ, 1, tensor)
	var b []byte
	b = appendString(b, 1, v.name)
	return appendBytes(b, 2, typ)
}

func dimParam(i int) string {
	if i == 0 {
		return "batch"
	}
	return "d" + strconv.Itoa(i)
}

// encode writes a NodeProto; nodes are named after their operator and
// position because ONNX Runtime's error messages quote node names.
func (n node) encode(i int) ([]byte, error) {
	var b []byte
	for _, in := range n.inputs {
		b = appendString(b, 1, in)
	}
	for _, out := range n.outputs {
		b = appendString(b, 2, out)
	}
	b = appendString(b, 3, n.op+"_"+strconv.Itoa(i))
	b = appendString(b, 4, n.op)
	for _, a := range n.attrs {
		ab, err := a.encode()
		if err != nil {
			return nil, fmt.Errorf("%w: node %d (%s): %w", ErrInvalidGraph, i, n.op, err)
		}
		b = appendBytes(b, 5, ab)
	}
	return b, nil
}

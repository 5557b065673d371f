package onnx

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/servekit/servekit/serving"
)

// How a model's outputs become servekit tensors.
//
// A plain tensor of a type servekit carries is served as it is. A ZipMap
// output, seq(map(int64|string, float)) — what skl2onnx and onnxmltools
// give every classifier by default — is served as the FP32 [N, C] tensor
// ZipMap was given, under the output's name, with ZipMap's class labels in
// TensorSpec.Labels: the model is rewritten before the session is made so
// that the graph outputs ZipMap's input instead and ZipMap is not run.
// Reading the maps back through the binding would cost a dozen cgo calls
// per row and give keys in the map's sorted order rather than the
// columns'; the rewrite costs nothing per run and the answers are the
// same numbers. Every other output that is not a plain tensor of a carried
// type (a sequence of tensors, a map, an optional, a sparse tensor, a
// sequence of maps not written by ZipMap, complex or 8-bit float elements)
// is left out of the session and listed in Metadata.Unserved with why; the
// model serves the rest.

// outputPlan is how each output ONNX Runtime reports is served.
type outputPlan struct {
	served   []serving.TensorSpec // Metadata.Outputs
	unserved []serving.UnservedOutput
	session  []serving.TensorSpec // what the session computes, by the session's names
	src      []int                // served[i] is computed as session[src[i]]
	edits    []edit               // graph rewrites; none when the model runs as it is
}

// planOutputs decides the plan. g is nil when the graph could not be read
// (gerr says why): plain tensors are then served without labels.
func planOutputs(infos []ort.InputOutputInfo, g *graph, gerr error) outputPlan {
	var p outputPlan
	for _, info := range infos {
		spec, sessionName, reason := planOutput(info, g, gerr, &p)
		if reason != "" {
			p.unserved = append(p.unserved, serving.UnservedOutput{Name: info.Name, Reason: reason})
			continue
		}
		i := slices.IndexFunc(p.session, func(s serving.TensorSpec) bool { return s.Name == sessionName })
		if i < 0 {
			i = len(p.session)
			s := spec
			s.Name = sessionName
			p.session = append(p.session, s)
		}
		p.served = append(p.served, spec)
		p.src = append(p.src, i)
	}
	return p
}

// planOutput returns the served spec of one output and the session output
// that computes it, or why it cannot be served.
func planOutput(info ort.InputOutputInfo, g *graph, gerr error, p *outputPlan) (serving.TensorSpec, string, string) {
	if info.OrtValueType == ort.ONNXTypeTensor {
		dt := dataType(info.DataType)
		if dt == serving.InvalidType {
			return serving.TensorSpec{}, "", fmt.Sprintf("its element type %s cannot be carried by servekit (it carries %s)",
				strings.ToLower(strings.TrimPrefix(info.DataType.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_")), carried)
		}
		spec := serving.TensorSpec{Name: info.Name, DataType: dt, Shape: dims(info.Dimensions)}
		if g != nil && (dt == serving.FP32 || dt == serving.FP64) && len(spec.Shape) >= 2 {
			if l := g.labelsOf(info.Name); len(l) > 0 && spec.Shape[len(spec.Shape)-1] == int64(len(l)) {
				spec.Labels = l
			}
		}
		return spec, info.Name, ""
	}
	kind := valueKind(info.OrtValueType)
	if g == nil {
		return serving.TensorSpec{}, "", fmt.Sprintf("it is a %s, and reading the model to tell what it holds failed: %v", kind, gerr)
	}
	declared := g.output(info.Name)
	if declared == nil {
		return serving.TensorSpec{}, "", "it is a " + kind + " the graph does not declare"
	}
	t := declared.typ
	if z := g.zipMapOf(info.Name); z != nil && isZipMapType(t) {
		spec := serving.TensorSpec{Name: info.Name, DataType: serving.FP32, Shape: []int64{-1, int64(len(z.labels))}, Labels: z.labels}
		p.edits = append(p.edits, zipMapEdits(g, z, declared, len(z.labels))...)
		return spec, z.inputs[0], ""
	}
	switch {
	case t.kind == kindSequence && t.inner != nil && t.inner.kind == kindMap:
		return serving.TensorSpec{}, "", "it is a " + t.String() + " not written by a ZipMap node, so its keys (the columns) are known only after a run; export the model with a ZipMap, or without one (skl2onnx options={'zipmap': False}) to get a tensor"
	case t.kind == kindSequence:
		return serving.TensorSpec{}, "", "it is a " + t.String() + ", whose elements may each have a shape of their own; servekit serves tensors"
	case t.kind == kindMap:
		return serving.TensorSpec{}, "", "it is a " + t.String() + ", which the Open Inference Protocol has no datatype for"
	}
	return serving.TensorSpec{}, "", "it is a " + t.String() + "; servekit serves plain tensors"
}

// carried lists the element types servekit carries, for messages.
const carried = "BOOL, UINT8-64, INT8-64, FP16, BF16, FP32, FP64 and strings"

// isZipMapType reports whether t is seq(map(int64|string, tensor(float))),
// the only type ZipMap writes.
func isZipMapType(t valueType) bool {
	if t.kind != kindSequence || t.inner == nil || t.inner.kind != kindMap {
		return false
	}
	m := t.inner
	return (m.elem == elemInt64 || m.elem == elemString) && m.inner != nil && m.inner.kind == kindTensor && m.inner.elem == elemFloat
}

func dims(d ort.Shape) []int64 {
	shape := make([]int64, len(d))
	for i, v := range d {
		shape[i] = max(v, -1) // ONNX Runtime reports symbolic dims as -1
	}
	return shape
}

// edit replaces the bytes at a section of the model; repl nil deletes them.
type edit struct {
	at   section
	repl []byte
}

// zipMapEdits makes the graph output ZipMap's input X (an FP32 [N, C]
// tensor) in place of ZipMap's output, and drops the ZipMap node when
// nothing else reads its output, so ONNX Runtime does not build the maps.
func zipMapEdits(g *graph, z *node, out *graphValue, columns int) []edit {
	x := z.inputs[0]
	var e []edit
	if g.output(x) != nil {
		e = append(e, edit{at: out.field}) // X is an output already
	} else {
		e = append(e, edit{at: out.field, repl: tensorOutput(x, columns)})
	}
	if !g.consumed(out.name) {
		e = append(e, edit{at: z.field})
	}
	return e
}

// tensorOutput encodes a GraphProto.output field declaring name as an FP32
// tensor of shape [N, columns].
func tensorOutput(name string, columns int) []byte {
	dim := func(b []byte, value int64, param string) []byte {
		var d []byte
		if param != "" {
			d = protowire.AppendTag(d, 2, protowire.BytesType)
			d = protowire.AppendString(d, param)
		} else {
			d = protowire.AppendTag(d, 1, protowire.VarintType)
			d = protowire.AppendVarint(d, uint64(value))
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		return protowire.AppendBytes(b, d)
	}
	shape := dim(dim(nil, 0, "N"), int64(columns), "")
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, elemFloat)
	tensor = protowire.AppendTag(tensor, 2, protowire.BytesType)
	tensor = protowire.AppendBytes(tensor, shape)
	var typ []byte
	typ = protowire.AppendTag(typ, 1, protowire.BytesType)
	typ = protowire.AppendBytes(typ, tensor)
	var vi []byte
	vi = protowire.AppendTag(vi, 1, protowire.BytesType)
	vi = protowire.AppendString(vi, name)
	vi = protowire.AppendTag(vi, 2, protowire.BytesType)
	vi = protowire.AppendBytes(vi, typ)
	var field []byte
	field = protowire.AppendTag(field, 12, protowire.BytesType)
	return protowire.AppendBytes(field, vi)
}

// rewrite applies edits, all inside the graph's body, to the model b.
func rewrite(b []byte, g *graph, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].at.off < edits[j].at.off })
	var body bytes.Buffer
	at := g.body.off
	for _, e := range edits {
		body.Write(b[at:e.at.off])
		body.Write(e.repl)
		at = e.at.end
	}
	body.Write(b[at:g.body.end])
	out := make([]byte, 0, len(b))
	out = append(out, b[:g.field.off]...)
	out = protowire.AppendTag(out, 7, protowire.BytesType)
	out = protowire.AppendBytes(out, body.Bytes())
	return append(out, b[g.field.end:]...)
}

// readModelGraph reads the graph of the model at path, or of b.
func readModelGraph(path string, b []byte) (*graph, error) {
	if path == "" {
		return readGraph(bytes.NewReader(b), int64(len(b)))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return readGraph(f, st.Size())
}

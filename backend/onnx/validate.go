package onnx

import (
	"reflect"
	"slices"

	"github.com/servekit/servekit/serving"
)

// validate checks req against the metadata and selects the outputs the
// response carries, in one pass over their names: sel gets the index in
// md.Outputs of each output asked for, in the order asked; it is nil when
// req names none (all, in model order). A name the model does not serve
// is left to Metadata.Validate to report, after the inputs, with its
// NotFound or Unimplemented error.
func (m *Model) validate(req *serving.Request, sel []int) ([]int, error) {
	if len(req.Outputs) == 0 {
		if m.inputsValid(req) {
			return nil, nil
		}
		return nil, m.md.Validate(req)
	}
	for _, name := range req.Outputs {
		j := slices.IndexFunc(m.md.Outputs, func(s serving.TensorSpec) bool { return s.Name == name })
		if j < 0 {
			if err := m.md.Validate(req); err != nil {
				return nil, err
			}
			return nil, serving.Errorf(serving.Internal, "onnx: model %q: output %q passed validation but is not served", m.md.Name, name)
		}
		sel = append(sel, j)
	}
	if m.inputsValid(req) {
		return sel, nil
	}
	inputs := *req
	inputs.Outputs = nil // selected above
	return sel, m.md.Validate(&inputs)
}

func (m *Model) initValidate() {
	for _, s := range m.md.Inputs {
		t, err := serving.Make(s.Name, s.DataType, nil)
		if err != nil {
			m.inData = nil // never valid by inputsValid: Metadata.Validate decides
			return
		}
		m.inData = append(m.inData, reflect.TypeOf(t.Data()))
	}
}

// inputsValid reports whether req's inputs are valid by a check of a few
// comparisons a tensor: the model's inputs in the model's order (as
// servekit's decoders and clients send them), each of its datatype and
// rank with its fixed dims, the same rows on every batchable input, data
// of the Go type and length the shape calls for. It accepts a subset of
// what Metadata.Validate accepts (TestInputsValidAgreesWithValidate),
// which decides, and words the error, for every other request; its
// generic checks (a name lookup an input, duplicates, missing names,
// error text prepared for each tensor) cost about 0.1 µs a call here.
func (m *Model) inputsValid(req *serving.Request) bool {
	if len(req.Inputs) != len(m.md.Inputs) || len(m.inData) != len(req.Inputs) {
		return false
	}
	batch := int64(-1)
	for i := range req.Inputs {
		t, s := &req.Inputs[i], &m.md.Inputs[i]
		if t.Name != s.Name || t.DataType != s.DataType || len(t.Shape) != len(s.Shape) ||
			len(t.Shape) > serving.MaxRank || reflect.TypeOf(t.Data()) != m.inData[i] {
			return false
		}
		n := int64(1)
		for k, d := range t.Shape {
			if d < 0 || (s.Shape[k] >= 0 && d != s.Shape[k]) || (d != 0 && n > serving.MaxElements/d) {
				return false
			}
			n *= d
		}
		if n > serving.MaxElements || int64(t.Len()) != n {
			return false
		}
		if s.Batchable() {
			if batch >= 0 && t.Shape[0] != batch {
				return false
			}
			batch = t.Shape[0]
		}
	}
	return true
}

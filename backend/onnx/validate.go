package onnx

import (
	"github.com/servekit/servekit/serving"
)

// validate checks req against the metadata (Metadata.Validate, whose
// in-order path is what a request from any servekit decoder or client
// takes) and selects the outputs the response carries: sel gets the index
// in md.Outputs of each output asked for, in the order asked; it is nil
// when req names none (all, in model order).
func (m *Model) validate(req *serving.Request, sel []int) ([]int, error) {
	if err := m.md.Validate(req); err != nil || len(req.Outputs) == 0 {
		return nil, err
	}
	for _, name := range req.Outputs {
		j := m.outputIndex(name)
		if j < 0 {
			return nil, serving.Errorf(serving.Internal, "onnx: model %q: output %q passed validation but is not served", m.md.Name, name)
		}
		sel = append(sel, j)
	}
	return sel, nil
}

// outputIndex is the index in md.Outputs of the named output, or -1.
func (m *Model) outputIndex(name string) int {
	for j := range m.md.Outputs {
		if m.md.Outputs[j].Name == name {
			return j
		}
	}
	return -1
}

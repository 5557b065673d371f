package serving

// Validate checks req against the model's metadata before any work is done:
// every input named once and known, none missing, datatypes, ranks and fixed
// dims as declared, data consistent with shapes, the same dimension 0 on every
// batchable input, and requested outputs that exist. Errors are
// InvalidArgument (NotFound for an unknown output, Unimplemented for one the
// model has but cannot serve, see Metadata.Unserved) and name the tensor and
// what was expected.
//
// A request whose inputs come in the model's order, as every servekit
// decoder and client sends them, is checked by a few comparisons a tensor
// (inOrder); any other request, and every error, takes the general path,
// which looks each input up by name and words what is wrong. The fast
// path accepts only what the general one accepts (TestValidateInOrder,
// FuzzValidateInOrder), so which of them ran never shows. It needs nothing
// prepared from the metadata, so Metadata stays a plain value and every
// Predictor that calls Validate gets it.
func (m Metadata) Validate(req *Request) error {
	if inOrder(m.Inputs, req) {
		return m.checkOutputs(req)
	}
	return m.validate(req)
}

// inOrder reports whether req's inputs are valid by a check of a few
// comparisons a tensor: the model's inputs in the model's order, each of
// its datatype and rank with its fixed dims, data of the Go type and
// length the shape calls for, the same rows on every batchable input. It
// reports false for every request it does not prove valid, including
// valid ones in another order, and leaves those to validate. The
// general path's name lookup, duplicate and missing-name scans and error
// text cost about 600 instructions for one input, this path about 180
// (callgrind, one FP32 [1, 8] input).
func inOrder(specs []TensorSpec, req *Request) bool {
	if len(req.Inputs) != len(specs) {
		return false
	}
	batch := int64(-1)
	for i := range req.Inputs {
		t, s := &req.Inputs[i], &specs[i]
		if t.Name != s.Name || t.DataType != s.DataType || len(t.Shape) != len(s.Shape) {
			return false
		}
		for k, d := range s.Shape {
			if d >= 0 && t.Shape[k] != d {
				return false
			}
		}
		if n, ok := lenAs(t.DataType, t.data); !ok || !holds(t.Shape, n) {
			return false
		}
		if len(s.Shape) > 0 && s.Shape[0] < 0 { // batchable
			if batch >= 0 && t.Shape[0] != batch {
				return false
			}
			batch = t.Shape[0]
		}
		// A name twice in the request is one twice in the metadata: not
		// for this path to accept. Bounded by the model's inputs, and no
		// comparison at all for a model of one.
		for j := range i {
			if req.Inputs[j].Name == t.Name {
				return false
			}
		}
	}
	return true
}

// validate is Validate's general path.
func (m *Metadata) validate(req *Request) error {
	batch := int64(-1)
	for i, t := range req.Inputs {
		spec, ok := m.Input(t.Name)
		if !ok {
			return Errorf(InvalidArgument, "serving: model %q has no input %q (inputs: %s)", m.Name, t.Name, specNames(m.Inputs))
		}
		for _, prev := range req.Inputs[:i] {
			if prev.Name == t.Name {
				return Errorf(InvalidArgument, "serving: input %q given twice", t.Name)
			}
		}
		if ok, why := spec.Matches(t); !ok {
			return Errorf(InvalidArgument, "serving: model %q input %q: %s", m.Name, t.Name, why)
		}
		if err := t.Validate(); err != nil {
			return err
		}
		if spec.Batchable() {
			if batch >= 0 && t.Shape[0] != batch {
				return Errorf(InvalidArgument, "serving: model %q input %q has %d rows, other inputs %d", m.Name, t.Name, t.Shape[0], batch)
			}
			batch = t.Shape[0]
		}
	}
	if err := m.checkNames(req); err != nil {
		return err
	}
	return m.checkOutputs(req)
}

// checkOutputs reports the first output req asks for that m does not serve.
func (m *Metadata) checkOutputs(req *Request) error {
	for _, name := range req.Outputs {
		if _, ok := m.Output(name); !ok {
			if u, ok := m.unserved(name); ok {
				return Errorf(Unimplemented, "serving: model %q cannot serve output %q: %s", m.Name, name, u.Reason)
			}
			return Errorf(NotFound, "serving: model %q has no output %q (outputs: %s)", m.Name, name, specNames(m.Outputs))
		}
	}
	return nil
}

// checkNames reports the first missing input.
func (m *Metadata) checkNames(req *Request) error {
	for _, s := range m.Inputs {
		if _, ok := req.Input(s.Name); !ok {
			return Errorf(InvalidArgument, "serving: model %q: missing input %q (%v%s)", m.Name, s.Name, s.DataType, shapeString(s.Shape))
		}
	}
	return nil
}

func specNames(s []TensorSpec) string {
	b := make([]byte, 0, 64)
	for i, t := range s {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, t.Name...)
	}
	return string(b)
}

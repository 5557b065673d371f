package serving

// Validate checks req against the model's metadata before any work is done:
// every input named once and known, none missing, datatypes, ranks and fixed
// dims as declared, data consistent with shapes, the same dimension 0 on every
// batchable input, and requested outputs that exist. Errors are
// InvalidArgument (NotFound for an unknown output, Unimplemented for one the
// model has but cannot serve, see Metadata.Unserved) and name the tensor and
// what was expected.
func (m Metadata) Validate(req *Request) error {
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
func (m Metadata) checkNames(req *Request) error {
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

package oipjson

import "github.com/servekit/servekit/serving"

// Building the request from what the envelope decoder read: the checks of
// each input, the tensors from JSON or binary data, and the scratch those
// need.

// finish builds the request from what was read, with the checks in the order
// they always had: parameters, inputs one by one, leftover binary data,
// outputs.
func (d *v2Decoder) finish(bin []byte) error {
	out := d.out
	out.Request.ID = d.id
	if d.paramStart >= 0 {
		s := scanner{b: d.s.b, i: d.paramStart}
		if s.b[s.i] != '{' {
			return badRequest("parameters: must be a JSON object")
		}
		left := d.lim.parameters + 1 // the object itself is one
		v, err := s.anyValue(1, &left)
		if err == errTooManyValues {
			return badRequest("parameters: more than %d values", d.lim.parameters)
		}
		if err != nil {
			return err
		}
		out.Request.Params = v.(map[string]any)
		out.binaryAll, _ = out.Request.Params.Bool("binary_data_output")
	}
	if len(d.ins) == 0 && !d.resp {
		return badRequest("no inputs")
	}
	if len(d.ins) == 1 {
		out.Request.Inputs = out.one[:]
	} else {
		out.Request.Inputs = make([]serving.Tensor, len(d.ins))
	}
	var seen nameSet
	for i := range d.ins {
		in := &d.ins[i]
		if seen.dup(in.name, len(d.ins)) {
			return badRequest("input %q given twice", in.name)
		}
		t, rest, err := d.tensor(in, bin)
		if err != nil {
			return err
		}
		if !in.hasBin { // FromRaw copied the shape; readData did not
			t.Name, t.Shape = in.name, out.keepShape(in.shape)
		}
		out.Request.Inputs[i], bin = t, rest
	}
	if len(bin) != 0 {
		return badRequest("%d bytes of binary data no input claims", len(bin))
	}
	if d.hasOutputs && len(d.outs) > 0 {
		out.Request.Outputs = make([]string, len(d.outs))
		out.asks = make([]outputAsk, len(d.outs))
		var seen nameSet
		for i, o := range d.outs {
			if o.name == "" {
				return badRequest("output %d has no name", i)
			}
			if seen.dup(o.name, len(d.outs)) {
				return badRequest("output %q asked for twice", o.name)
			}
			out.Request.Outputs[i] = o.name
			out.asks[i] = outputAsk{set: o.hasBinary, binary: o.binary}
			if o.hasClass {
				if o.class < 1 || o.class > serving.MaxClassification {
					return badRequest("output %q: classification must be 1 to %d, got %d", o.name, serving.MaxClassification, o.class)
				}
				out.asks[i].class = o.class
			}
		}
	}
	return nil
}

// tensor checks one input and builds its tensor from "data" or from the
// binary part, returning the binary bytes left.
func (d *v2Decoder) tensor(in *v2Input, bin []byte) (serving.Tensor, []byte, error) {
	if in.name == "" {
		return serving.Tensor{}, nil, badRequest("an input has no name")
	}
	dt := in.dtype
	if !in.dtOK {
		return serving.Tensor{}, nil, badRequest("input %q: unknown datatype %q", in.name, in.dt)
	}
	if in.shape == nil {
		return serving.Tensor{}, nil, badRequest("input %q: no shape", in.name)
	}
	n, err := serving.NumElements(in.shape)
	if err != nil {
		return serving.Tensor{}, nil, badRequest("input %q: %v", in.name, err)
	}
	if n > d.lim.elements {
		return serving.Tensor{}, nil, badRequest("input %q: %d elements, the limit is %d", in.name, n, d.lim.elements)
	}
	if in.hasBin {
		size := in.binSize
		if size < 0 || size > int64(len(bin)) {
			return serving.Tensor{}, nil, badRequest("input %q: binary_data_size %d, %d bytes left", in.name, size, len(bin))
		}
		if in.dataStart >= 0 && !(d.s.literalAt(in.dataStart, "null")) {
			return serving.Tensor{}, nil, badRequest("input %q: both data and binary_data_size", in.name)
		}
		t, err := serving.FromRaw(in.name, dt, in.shape, bin[:size])
		if err != nil {
			return serving.Tensor{}, nil, badRequest("input %q: %v", in.name, err)
		}
		return t, bin[size:], nil
	}
	if in.dataStart < 0 {
		return serving.Tensor{}, nil, badRequest("input %q: no data", in.name)
	}
	// A datatype or shape that came after the data: the values read then
	// stand when the datatype and count are the same, else the data is read
	// again, its earlier claim given back to the budget.
	switch {
	case !in.parsed:
		d.read(in, &scanner{b: d.s.b, i: in.dataStart}, n)
	case in.parsedDT != dt || in.parsedN != n && in.dataErr != nil:
		d.bud.left += in.cost
		d.read(in, &scanner{b: d.s.b, i: in.dataStart}, n)
	case in.parsedN != n:
		in.dataErr = countMismatch(in.shape, n, int64(in.t.Len()))
	}
	if in.dataErr != nil {
		return serving.Tensor{}, nil, badRequest("input %q: %v", in.name, in.dataErr)
	}
	return in.t, bin, nil
}

// keepShape copies a shape out of the pooled scratch space, into the
// request's own room while it lasts.
func (out *InferRequest) keepShape(shape []int64) []int64 {
	if s := carve[int64](&out.free, int64(len(shape))); s != nil {
		return append(s, shape...)
	}
	return append([]int64{}, shape...) // not nil: [] is a scalar
}

// appendDim appends to the decoder's shape scratch, doubling it when full:
// append's gentler growth for large slices would copy a long run of shapes
// many more times.
func appendDim(s []int64, v int64) []int64 {
	if len(s) == cap(s) {
		grown := make([]int64, len(s), max(16, 2*cap(s)))
		copy(grown, s)
		s = grown
	}
	return append(s, v)
}

// nameSet finds a repeated name in linear time: by comparison for the few
// names of an ordinary request (in place, no allocation), by a map past
// that.
type nameSet struct {
	few  [fewNames]string
	n    int
	many map[string]struct{}
}

const fewNames = 8

// dup reports whether name was added before, and adds it. size is how many
// names will be added in all.
func (s *nameSet) dup(name string, size int) bool {
	if size > fewNames {
		if s.many == nil {
			s.many = make(map[string]struct{}, size)
		}
		if _, ok := s.many[name]; ok {
			return true
		}
		s.many[name] = struct{}{}
		return false
	}
	for _, n := range s.few[:s.n] {
		if n == name {
			return true
		}
	}
	s.few[s.n] = name
	s.n++
	return false
}

package oipjson

import (
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// DecodeModelMetadata decodes a V2 model metadata answer (GET
// /v2/models/{name}[/versions/{v}]) into the model's metadata and the
// versions the server lists: name, platform, inputs and outputs, and what
// servekit's REST transport adds in "parameters" (the device, an output's
// class labels, the unserved outputs), which Triton and KServe leave out.
// What a Go client of a V2 server reads. Bounded as DecodeResponse is:
// every array is counted before its slice is made, tensors are capped by
// lim.Inputs and lim.Outputs (a zero field is its default), shapes by
// serving.MaxRank. Unknown members are skipped; null leaves a field empty
// (an entry of a list must be an object).
// Errors are InvalidArgument.
func DecodeModelMetadata(body []byte, lim oip.Limits) (md serving.Metadata, versions []string, err error) {
	d := mdDecoder{s: scanner{b: body}, lim: limitsOf(lim)}
	err = d.document(func(key []byte, esc bool) error {
		switch canonKey(key, esc, "name", "versions", "platform", "inputs", "outputs", "parameters") {
		case "name":
			return d.str(&md.Name, "name")
		case "platform":
			return d.str(&md.Platform, "platform")
		case "versions":
			return d.strs(&versions, "versions", 1)
		case "inputs":
			return d.specs(&md.Inputs, "inputs", d.lim.inputs)
		case "outputs":
			return d.specs(&md.Outputs, "outputs", d.lim.outputs)
		case "parameters":
			return d.modelParams(&md)
		}
		return d.s.skip(1)
	})
	if err != nil {
		return serving.Metadata{}, nil, err
	}
	return md, versions, nil
}

// DecodeServerMetadata decodes a V2 server metadata answer (GET /v2):
// name, version, extensions. Bounded and lenient as DecodeModelMetadata
// is.
func DecodeServerMetadata(body []byte) (oip.ServerMetadata, error) {
	var m oip.ServerMetadata
	d := mdDecoder{s: scanner{b: body}}
	err := d.document(func(key []byte, esc bool) error {
		switch canonKey(key, esc, "name", "version", "extensions") {
		case "name":
			return d.str(&m.Name, "name")
		case "version":
			return d.str(&m.Version, "version")
		case "extensions":
			return d.strs(&m.Extensions, "extensions", 1)
		}
		return d.s.skip(1)
	})
	if err != nil {
		return oip.ServerMetadata{}, err
	}
	return m, nil
}

// mdDecoder reads the small metadata documents of the protocol.
type mdDecoder struct {
	s   scanner
	lim limits
}

func metadataError(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "oipjson: metadata: "+format, args...)
}

// document reads the top-level object, calling member for each member.
func (d *mdDecoder) document(member func(key []byte, esc bool) error) error {
	s := &d.s
	if s.next() != '{' {
		if s.i == len(s.b) {
			return metadataError("empty body")
		}
		return metadataError("not a JSON object")
	}
	err := s.object(0, member)
	if err == nil {
		if s.ws(); s.i != len(s.b) {
			err = s.syntax("invalid character after top-level value")
		}
	}
	if se, ok := err.(*syntaxError); ok {
		return metadataError("malformed JSON: %v", se)
	}
	return err
}

// null consumes a null, reporting whether there was one.
func (d *mdDecoder) null() bool { return d.s.b[d.s.i] == 'n' && d.s.literal("null") }

func (d *mdDecoder) str(dst *string, key string) error {
	if d.null() {
		return nil
	}
	if d.s.b[d.s.i] != '"' {
		return metadataError("%q must be a string", key)
	}
	v, err := d.s.stringValue()
	*dst = v
	return err
}

// count returns how many elements the array at s.i holds, without
// consuming it.
func (d *mdDecoder) count(depth int) (int, error) {
	s := &d.s
	start, n := s.i, 0
	err := s.array(depth, func(int) error {
		n++
		return s.skip(depth + 1)
	})
	s.i = start
	return n, err
}

// array reads the array of key at s.i, of at most most elements (0: no
// cap), after counting them: size makes room for n, elem reads one.
func (d *mdDecoder) array(key string, depth, most int, size func(n int), elem func(i int) error) error {
	if d.null() {
		return nil
	}
	if d.s.b[d.s.i] != '[' {
		return metadataError("%q must be a list", key)
	}
	n, err := d.count(depth)
	if err != nil {
		return err
	}
	if most > 0 && n > most {
		return metadataError("%q has %d entries, more than the limit of %d", key, n, most)
	}
	size(n)
	return d.s.array(depth, elem)
}

func (d *mdDecoder) strs(dst *[]string, key string, depth int) error {
	return d.array(key, depth, 0, func(n int) { *dst = make([]string, n) }, func(i int) error {
		return d.str(&(*dst)[i], key)
	})
}

// specs reads the tensors of "inputs" or "outputs".
func (d *mdDecoder) specs(dst *[]serving.TensorSpec, key string, most int) error {
	return d.array(key, 1, most, func(n int) { *dst = make([]serving.TensorSpec, n) }, func(i int) error {
		return d.spec(&(*dst)[i], key)
	})
}

func (d *mdDecoder) spec(t *serving.TensorSpec, key string) error {
	if d.s.b[d.s.i] != '{' {
		return metadataError("the entries of %q must be objects", key)
	}
	var dt string
	err := d.s.object(2, func(k []byte, esc bool) error {
		switch canonKey(k, esc, "name", "datatype", "shape", "parameters") {
		case "name":
			return d.str(&t.Name, "name")
		case "datatype":
			return d.str(&dt, "datatype")
		case "shape":
			return d.shape(&t.Shape)
		case "parameters":
			return d.specParams(t)
		}
		return d.s.skip(3)
	})
	if err != nil {
		return err
	}
	if t.DataType, err = serving.ParseDataType(dt); err != nil {
		return metadataError("%s %q: unknown datatype %q", key[:len(key)-1], t.Name, dt)
	}
	return nil
}

func (d *mdDecoder) shape(dst *[]int64) error {
	return d.array("shape", 3, serving.MaxRank, func(n int) { *dst = make([]int64, n) }, func(i int) error {
		n, ok := d.s.number()
		if !ok {
			return metadataError("a shape must hold integers")
		}
		v, ok := n.int64()
		if !ok || v < -1 {
			return metadataError("a shape must hold integers of -1 or more, got %s", n.tok)
		}
		(*dst)[i] = v
		return nil
	})
}

// specParams reads a tensor's parameters: "labels", servekit's class
// labels of an output.
func (d *mdDecoder) specParams(t *serving.TensorSpec) error {
	if d.null() {
		return nil
	}
	if d.s.b[d.s.i] != '{' {
		return metadataError("a tensor's \"parameters\" must be an object")
	}
	return d.s.object(3, func(k []byte, esc bool) error {
		if canonKey(k, esc, "labels") == "labels" {
			return d.strs(&t.Labels, "labels", 4)
		}
		return d.s.skip(4)
	})
}

// modelParams reads the model's parameters: servekit's "device" and
// "unserved_outputs".
func (d *mdDecoder) modelParams(md *serving.Metadata) error {
	if d.null() {
		return nil
	}
	if d.s.b[d.s.i] != '{' {
		return metadataError("\"parameters\" must be an object")
	}
	return d.s.object(1, func(k []byte, esc bool) error {
		switch canonKey(k, esc, "device", "unserved_outputs") {
		case "device":
			return d.str(&md.Device, "device")
		case "unserved_outputs":
			return d.array("unserved_outputs", 2, d.lim.outputs, func(n int) { md.Unserved = make([]serving.UnservedOutput, n) }, func(i int) error {
				return d.unserved(&md.Unserved[i])
			})
		}
		return d.s.skip(2)
	})
}

func (d *mdDecoder) unserved(u *serving.UnservedOutput) error {
	if d.s.b[d.s.i] != '{' {
		return metadataError("the entries of \"unserved_outputs\" must be objects")
	}
	return d.s.object(3, func(k []byte, esc bool) error {
		switch canonKey(k, esc, "name", "reason") {
		case "name":
			return d.str(&u.Name, "name")
		case "reason":
			return d.str(&u.Reason, "reason")
		}
		return d.s.skip(4)
	})
}

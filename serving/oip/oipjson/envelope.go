package oipjson

import (
	"bytes"
	"sync"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
)

// The V2 request envelope is decoded by hand in one pass over the body:
// syntax and UTF-8 are checked as the values are read, unknown keys are
// skipped (and checked), and "data" is read straight into a typed slice when
// "shape" and "datatype" came before it (as every client writes them); when
// they come after, the data is read once they are known. It accepts exactly
// the bodies encoding/json accepted before (differential_test.go), with the
// same quirks: keys match case-insensitively, a repeated key's last value
// wins (objects merge, as encoding/json's do), null leaves a field unset.
//
// Errors keep encoding/json's precedence: invalid UTF-8 anywhere, then
// malformed JSON anywhere, then a value of the wrong JSON type, then the
// checks in request order. A semantic error therefore never stops the pass.

// v2Input is one entry of "inputs" as read; the tensor is built at the end.
type v2Input struct {
	name      string
	dt        string // as given, for the error when it is unknown
	dtype     serving.DataType
	dtOK      bool
	shape     []int64 // into v2Decoder.shapes; nil when absent or null
	shapeEnd  int     // where shape ends in v2Decoder.shapes
	dataStart int     // offset of "data" in the JSON, -1 when absent
	binSize   int64
	hasBin    bool // parameters.binary_data_size set
	// What "data" gave when it was read as soon as it came (parsed): the
	// tensor or the error, for the datatype and element count of the time.
	parsed   bool
	parsedDT serving.DataType
	parsedN  int64
	cost     int64 // what the read took from the budget
	t        serving.Tensor
	dataErr  error
}

type v2Output struct {
	name      string
	binary    bool
	hasBinary bool
	class     int64 // parameters.classification: the top classes to answer
	hasClass  bool
}

// v2Decoder holds the scratch space of one decode; it is pooled.
type v2Decoder struct {
	s          scanner
	lim        limits
	bud        budget        // the JSON's bytes not yet claimed by a data array
	z          sizing        // how data arrays are sized: out's room, then bud
	typeErr    error         // the first value of the wrong JSON type
	out        *InferRequest // the result, whose room holds short strings and data
	id         string
	ins        []v2Input
	outs       []v2Output
	hasOutputs bool
	shapes     []int64 // every "shape" read, back to back
	paramStart int     // offset of "parameters", -1 when absent or null
	// resp: the body is an answer, whose "outputs" are tensors read as
	// inputs are, beside "model_name" and "model_version".
	resp           bool
	model, version string
}

var decoderPool = sync.Pool{New: func() any { return new(v2Decoder) }}

// decodeV2 decodes a V2 infer body into out: JSON, or JSON followed by raw
// tensor bytes when jsonLen >= 0 (the Inference-Header-Content-Length).
// What it keeps does not point into body.
func decodeV2(out *InferRequest, body []byte, jsonLen int, lim limits) error {
	return decode(out, body, jsonLen, lim, nil)
}

// answer receives what only an answer has; a non-nil one decodes an
// answer (DecodeResponse) instead of a request.
type answer struct{ model, version string }

func decode(out *InferRequest, body []byte, jsonLen int, lim limits, ans *answer) error {
	js, bin := body, []byte(nil)
	if jsonLen >= 0 {
		if jsonLen > len(body) {
			return badRequest("JSON header of %d bytes in a %d-byte body", jsonLen, len(body))
		}
		js, bin = body[:jsonLen], body[jsonLen:]
	}
	out.free = out.words[:]
	d := decoderPool.Get().(*v2Decoder)
	defer d.release()
	*d = v2Decoder{s: scanner{b: js}, lim: lim, bud: budget{int64(len(js))}, ins: d.ins[:0], outs: d.outs[:0], shapes: d.shapes[:0], paramStart: -1, out: out,
		resp: ans != nil}
	if err := d.top(); err != nil {
		if se, ok := err.(*syntaxError); ok {
			if !utf8.Valid(js) {
				return badRequest("request JSON is not valid UTF-8")
			}
			return badRequest("malformed request JSON: %v", se)
		}
		return err
	}
	if d.typeErr != nil {
		return d.typeErr
	}
	if ans != nil {
		ans.model, ans.version = d.model, d.version
	}
	return d.finish(bin)
}

// The pool keeps the scratch of ordinary requests only: one with a
// thousand inputs should not pin its scratch for every later one.
const (
	poolInputs = 64
	poolDims   = 1024
)

func (d *v2Decoder) release() {
	clear(d.ins[:cap(d.ins)]) // drop tensors and strings
	clear(d.outs[:cap(d.outs)])
	if cap(d.ins) > poolInputs || cap(d.outs) > poolInputs || cap(d.shapes) > poolDims {
		d.ins, d.outs, d.shapes = nil, nil, nil
	}
	d.s.b, d.out, d.id, d.z = nil, nil, "", sizing{}
	decoderPool.Put(d)
}

// wrongType records that key holds the wrong kind of value, and skips it.
func (d *v2Decoder) wrongType(key, want string, depth int) error {
	if d.typeErr == nil {
		d.typeErr = badRequest("malformed request JSON: %q must be %s", key, want)
	}
	return d.s.skip(depth)
}

// canon maps a key to one of names: exactly, else after unescaping, else
// case-insensitively, as encoding/json matches struct fields; "" if none.
func canon(key []byte, esc bool, names ...string) string {
	if esc {
		key = unescape(key)
	}
	for _, n := range names {
		if str(key) == n {
			return n
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return n
		}
	}
	return ""
}

func (d *v2Decoder) top() error {
	s := &d.s
	if s.next() == 0 {
		return s.syntax("unexpected end of JSON input")
	}
	keys := topKeys
	if d.resp {
		keys = responseKeys
	}
	err := d.fields(0, "request", "an object", nil, keys, func(k string) error {
		switch k {
		case "id":
			return d.str(&d.id, "id", 1)
		case "inputs":
			return d.inputs()
		case "outputs":
			if d.resp {
				return d.inputs()
			}
			return d.outputs()
		case "model_name":
			return d.str(&d.model, "model_name", 1)
		case "model_version":
			return d.str(&d.version, "model_version", 1)
		}
		d.paramStart = -1 // parameters: read at the end, if not null
		if s.b[s.i] != 'n' {
			d.paramStart = s.i
		}
		return s.skip(1)
	})
	if err != nil {
		return err
	}
	if s.ws(); s.i != len(s.b) {
		return s.syntax("invalid character after top-level value")
	}
	return nil
}

// str reads a string field; null leaves it as it was.
func (d *v2Decoder) str(dst *string, key string, depth int) error {
	s := &d.s
	switch s.b[s.i] {
	case '"':
		raw, esc, err := s.rawString()
		if err == nil {
			*dst = d.out.keepString(raw, esc)
		}
		return err
	case 'n':
		if s.literal("null") {
			return nil
		}
	}
	return d.wrongType(key, "a string", depth)
}

// list runs elem over the array at s.i; null empties it. encoding/json
// reuses the elements of a repeated key's earlier array, so elem gets i to
// decide whether element i is reused.
func (d *v2Decoder) list(key string, elem func(i int) error, reset func()) error {
	s := &d.s
	switch s.b[s.i] {
	case '[':
		return s.array(1, elem)
	case 'n':
		if s.literal("null") {
			reset()
			return nil
		}
	}
	return d.wrongType(key, "a list", 1)
}

func (d *v2Decoder) inputs() error {
	old := len(d.ins)
	d.ins = d.ins[:0]
	return d.list("inputs", func(i int) error {
		if i >= d.lim.inputs {
			return badRequest("more than %d inputs", d.lim.inputs)
		}
		if i >= old { // a new element: zero, as encoding/json grows a slice
			d.ins = append(d.ins[:i], v2Input{dataStart: -1})
		} else {
			d.ins = d.ins[:i+1]
		}
		return d.input(&d.ins[i])
	}, func() { d.ins = d.ins[:0] })
}

func (d *v2Decoder) input(in *v2Input) error {
	return d.fields(2, "inputs", "a list of objects", nil, inputKeys, func(k string) error {
		switch k {
		case "name":
			return d.str(&in.name, "name", 3)
		case "datatype":
			return d.datatype(in)
		case "shape":
			return d.shape(in)
		case "data":
			return d.data(in)
		}
		return d.tensorParams(&in.binSize, &in.hasBin, nil, nil, nil)
	})
}

var (
	topKeys      = []string{"id", "inputs", "outputs", "parameters"}
	responseKeys = []string{"id", "model_name", "model_version", "outputs", "parameters"}
	inputKeys    = []string{"name", "shape", "datatype", "data", "parameters"}
	outputKeys   = []string{"name", "parameters"}
	paramKeys    = []string{"binary_data_size", "binary_data"}
	// An output's parameters also take Triton's classification extension.
	outputParamKeys = []string{"binary_data_size", "binary_data", serving.ParamClassification}
)

// fields reads an object whose keys are among names (matched as canonKey
// does; other keys are skipped), or null (onNull, if any); anything else is
// the wrong type for key.
func (d *v2Decoder) fields(depth int, key, want string, onNull func(), names []string, field func(name string) error) error {
	s := &d.s
	switch s.b[s.i] {
	case 'n':
		if s.literal("null") {
			if onNull != nil {
				onNull()
			}
			return nil
		}
	case '{':
		return s.object(depth, func(k []byte, esc bool) error {
			if name := canonKey(k, esc, names...); name != "" {
				return field(name)
			}
			return s.skip(depth + 1)
		})
	}
	return d.wrongType(key, want, depth)
}

// datatype keeps a known datatype's name without allocating.
func (d *v2Decoder) datatype(in *v2Input) error {
	s := &d.s
	if s.b[s.i] != '"' {
		err := d.str(&in.dt, "datatype", 3)
		in.dtype, _ = serving.ParseDataType(in.dt)
		in.dtOK = in.dt != "" && in.dtype.Valid()
		return err
	}
	raw, esc, err := s.rawString()
	if err != nil {
		return err
	}
	if esc {
		raw = unescape(raw)
	}
	in.dtype, err = serving.ParseDataType(str(raw))
	if in.dtOK = err == nil; in.dtOK {
		in.dt = in.dtype.String() // no copy of the body's bytes
	} else {
		in.dt = string(raw)
	}
	return nil
}

// scalarShape is the shape "[]": empty but not nil, which means absent.
var scalarShape = []int64{}

func (d *v2Decoder) shape(in *v2Input) error {
	s := &d.s
	switch s.b[s.i] {
	case 'n':
		if s.literal("null") {
			in.shape = nil
			return nil
		}
	case '[':
		// encoding/json decodes into the earlier slice: elements past the new
		// length are dropped, null elements keep what was there.
		prev := in.shape
		if len(prev) == 0 && d.plainShape(in) {
			return nil
		}
		off := len(d.shapes)
		if len(prev) > 0 && in.shapeEnd == off { // a repeated key: write over the last shape, read before written
			off -= len(prev)
			d.shapes = d.shapes[:off]
		}
		err := s.array(3, func(i int) error {
			if i >= serving.MaxRank {
				return badRequest("a shape of more than %d dims", serving.MaxRank)
			}
			var v int64
			if i < len(prev) {
				v = prev[i]
			}
			if s.b[s.i] == 'n' && s.literal("null") {
				d.shapes = appendDim(d.shapes, v)
				return nil
			}
			n, ok := s.number()
			if !ok {
				d.shapes = appendDim(d.shapes, v)
				return d.wrongType("shape", "a list of integers", 4)
			}
			x, ok := n.int64()
			if !ok && d.typeErr == nil {
				d.typeErr = badRequest("malformed request JSON: shape: %s is not an int64", n.tok)
			}
			if ok {
				v = x
			}
			d.shapes = appendDim(d.shapes, v)
			return nil
		})
		in.shapeEnd = len(d.shapes)
		in.shape = d.shapes[off:len(d.shapes):len(d.shapes)]
		if in.shape == nil { // slicing a nil d.shapes: [] is a scalar, not "absent"
			in.shape = scalarShape
		}
		return err
	}
	return d.wrongType("shape", "a list of integers", 3)
}

// plainShape reads the shape at s.i when it is what clients send, a list
// of at most MaxRank non-negative integers of up to 18 digits, without the
// closure per element of the general path. Anything else (null, a sign, a
// fraction, a malformed list) leaves d as it was and reports false, for
// the general path to read or reject as always.
func (d *v2Decoder) plainShape(in *v2Input) bool {
	t := d.s // a copy: s.i moves only on success
	t.i++
	off := len(d.shapes)
	shapes := d.shapes // appendDim may write past len(d.shapes): no one's elements
	if t.ws(); t.i < len(t.b) && t.b[t.i] == ']' {
		t.i++
	} else {
		for {
			if len(shapes)-off == serving.MaxRank {
				return false
			}
			start := t.i
			var v int64
			for ; t.i < len(t.b) && '0' <= t.b[t.i] && t.b[t.i] <= '9'; t.i++ {
				if t.i-start == 18 {
					return false
				}
				v = v*10 + int64(t.b[t.i]-'0')
			}
			if t.i == start || t.b[start] == '0' && t.i-start > 1 { // no digits, or a leading zero
				return false
			}
			shapes = appendDim(shapes, v)
			if t.ws(); t.i >= len(t.b) {
				return false
			}
			if t.b[t.i] == ']' {
				t.i++
				break
			}
			if t.b[t.i] != ',' {
				return false
			}
			t.i++
			t.ws()
		}
	}
	d.s.i, d.shapes = t.i, shapes
	in.shapeEnd = len(shapes)
	in.shape = shapes[off:len(shapes):len(shapes)]
	if in.shape == nil { // [] is a scalar, not "absent"
		in.shape = scalarShape
	}
	return true
}

// data notes where "data" is, and reads it now if it can.
func (d *v2Decoder) data(in *v2Input) error {
	s := &d.s
	in.dataStart, in.parsed = s.i, false
	n, ok := d.dataReady(in)
	if ok {
		d.read(in, s, n)
		if in.dataErr == nil {
			return nil
		}
		s.i = in.dataStart // checked again from the start: malformed JSON is reported first
	}
	return s.skip(3)
}

// read reads in's data at s.i as n elements of its datatype. The tensor's
// name is set in finish: an input's name may come after its data.
func (d *v2Decoder) read(in *v2Input, s *scanner, n int64) {
	d.z = sizing{room: &d.out.free, bud: &d.bud}
	in.t, in.dataErr = readData(s, "", in.dtype, in.shape, n, &d.z)
	in.parsed, in.parsedDT, in.parsedN, in.cost = true, in.dtype, n, d.z.cost
}

// dataReady reports whether in's data can be read now, and the element count.
func (d *v2Decoder) dataReady(in *v2Input) (int64, bool) {
	if in.shape == nil || in.hasBin || !in.dtOK {
		return 0, false
	}
	n, err := serving.NumElements(in.shape)
	return n, err == nil && n <= d.lim.elements
}

// tensorParams reads an input's or output's parameters: binary_data_size,
// binary_data and, for an output (o not nil), classification; null unsets
// them, other keys are skipped.
func (d *v2Decoder) tensorParams(size *int64, hasSize *bool, bin *bool, hasBin *bool, o *v2Output) error {
	s := &d.s
	unset := func() {
		*hasSize = false
		if hasBin != nil {
			*hasBin = false
		}
		if o != nil {
			o.hasClass = false
		}
	}
	keys := paramKeys
	if o != nil {
		keys = outputParamKeys
	}
	return d.fields(3, "parameters", "an object", unset, keys, func(k string) error {
		if k == serving.ParamClassification {
			return d.classification(o)
		}
		if k == "binary_data_size" {
			if s.literal("null") {
				*hasSize = false
				return nil
			}
			n, ok := s.number()
			if !ok {
				return d.wrongType("binary_data_size", "an integer", 4)
			}
			if v, ok := n.int64(); ok {
				*size, *hasSize = v, true
			} else if d.typeErr == nil {
				d.typeErr = badRequest("malformed request JSON: binary_data_size %s is not an int64", n.tok)
			}
			return nil
		}
		var v, set bool
		switch {
		case s.literal("true"):
			v, set = true, true
		case s.literal("false"):
			set = true
		case s.literal("null"):
		default:
			return d.wrongType("binary_data", "true or false", 4)
		}
		if hasBin != nil {
			*bin, *hasBin = v, set
		}
		return nil
	})
}

// classification reads an output's top-k count: a positive integer, or
// null to unset it.
func (d *v2Decoder) classification(o *v2Output) error {
	s := &d.s
	if s.literal("null") {
		o.hasClass = false
		return nil
	}
	n, ok := s.number()
	if !ok {
		return d.wrongType(serving.ParamClassification, "an integer", 4)
	}
	if v, ok := n.int64(); ok {
		o.class, o.hasClass = v, true
	} else if d.typeErr == nil {
		d.typeErr = badRequest("malformed request JSON: classification %s is not an int64", n.tok)
	}
	return nil
}

func (d *v2Decoder) outputs() error {
	old := len(d.outs)
	d.outs, d.hasOutputs = d.outs[:0], true
	return d.list("outputs", func(i int) error {
		if i >= d.lim.outputs {
			return badRequest("more than %d outputs", d.lim.outputs)
		}
		if i >= old {
			d.outs = append(d.outs[:i], v2Output{})
		} else {
			d.outs = d.outs[:i+1]
		}
		o := &d.outs[i]
		return d.fields(2, "outputs", "a list of objects", nil, outputKeys, func(k string) error {
			if k == "name" {
				return d.str(&o.name, "name", 3)
			}
			var size int64
			var hasSize bool
			return d.tensorParams(&size, &hasSize, &o.binary, &o.hasBinary, o)
		})
	}, func() { d.outs = d.outs[:0] })
}

// canonKey is canon with the exact-match fast path.
func canonKey(key []byte, esc bool, names ...string) string {
	if !esc {
		for _, n := range names {
			if str(key) == n {
				return n
			}
		}
	}
	return canon(key, esc, names...)
}

package grpcapi

import (
	"errors"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// A ModelInferRequest is decoded from the wire by hand rather than by
// proto.Unmarshal, which appends repeated fields one element at a time: an
// empty bytes_contents element (2 bytes on the wire) grows a slice of 24-byte
// headers by Go's append, about 60 bytes of memory for 2 of message, and an
// empty input (2 bytes) costs a ~120-byte struct and its pointer. Here every
// message is read twice: once to count what each repeated field holds (and
// to enforce the limits on inputs, outputs, parameters and dims, so an
// oversized request costs only that pass), once to fill slices of exactly
// those sizes. The result is the same message proto.Unmarshal makes, unknown
// fields dropped (wire_test.go compares the two).

var errWire = errors.New("cannot parse invalid wire-format data")

// wireField is one field of a message on the wire: v holds a varint or fixed
// value, b the bytes of a length-delimited one.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// eachField calls f for every field of msg, groups (deprecated, always
// unknown here) included as type StartGroupType with no value.
func eachField(msg []byte, f func(wireField) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 || num > protowire.MaxValidNumber {
			return errWire
		}
		msg = msg[n:]
		fl := wireField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			fl.v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(msg)
			fl.v = uint64(v)
		case protowire.Fixed64Type:
			fl.v, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			fl.b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return errWire
		}
		msg = msg[n:]
		if err := f(fl); err != nil {
			return err
		}
	}
	return nil
}

// repeated is a repeated field a decoder counts on the wire before it makes
// the field's slice, so that the slice is sized by what the bytes hold and
// never by a count the sender claims: the wire type of one element
// (BytesType for messages, strings and bytes; a scalar's type for scalars,
// packed or not), the most elements one message may hold, and the name an
// error gives them ("grpcapi: more than 1024 inputs"). Counting fills n,
// the elements seen, and bytes, the length of those length-delimited.
type repeated struct {
	typ      protowire.Type
	max      int
	name     string
	n, bytes int
}

// uncapped is the max of a repeated field whose elements cost no more
// than their bytes on the wire (a string's header and its bytes), so that
// serving.DecodeBudget bounds them without a cap.
const uncapped = math.MaxInt

// countRepeated counts, in one pass over msg, the fields that fields
// describes: fields[i] counts field number first+i, and an entry without a
// name counts nothing, so that a decoder's table reads as its message's
// shape and finding a field's counter costs an index. It fails as soon as
// a field holds more than its max (InvalidArgument, naming it): an
// oversized message costs that pass and nothing else. Fields of the wrong
// wire type (unknown fields) count nothing.
func countRepeated(msg []byte, first protowire.Number, fields []repeated) error {
	return eachField(msg, func(f wireField) error {
		i := uint(f.num - first)
		if i >= uint(len(fields)) {
			return nil
		}
		r := &fields[i]
		if f.typ == r.typ && r.n < r.max {
			// One element under the cap, the common case, first and
			// without a call: this pass is on the native server's hot
			// path. (An entry without a name has max 0.)
			r.n++
			r.bytes += len(f.b)
			return nil
		}
		if r.name == "" {
			return nil
		}
		return r.add(f)
	})
}

// add counts one occurrence of r on the wire: one element, or as many as
// a packed scalar field holds (an upper bound for malformed packing, which
// the fill pass rejects).
func (r *repeated) add(f wireField) error {
	if f.typ == protowire.BytesType {
		r.bytes += len(f.b)
	}
	if r.n += repeatedCount(f, r.typ); r.n > r.max {
		return serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d %s", r.max, r.name)
	}
	return nil
}

// wireDecoder decodes one ModelInferRequest within its limits.
type wireDecoder struct {
	lim    oip.Limits
	params int // parameters decoded so far, in every map of the request
}

// decodeInferRequest replaces m with the request encoded in b, which m
// does not keep: the raw contents are copied.
func decodeInferRequest(b []byte, m *pb.ModelInferRequest, lim oip.Limits) error {
	return decodeInfer(b, m, lim, false)
}

// decodeInfer is decodeInferRequest; with alias, m's raw contents are
// slices of b (capacity clipped), for a caller that owns b for as long as
// m is used.
func decodeInfer(b []byte, m *pb.ModelInferRequest, lim oip.Limits, alias bool) error {
	proto.Reset(m)
	d := wireDecoder{lim: lim}
	var c [3]repeated // fields 5, 6 and 7
	c[0] = repeated{typ: protowire.BytesType, max: lim.Inputs, name: "inputs"}
	c[1] = repeated{typ: protowire.BytesType, max: lim.Outputs, name: "outputs"}
	c[2] = repeated{typ: protowire.BytesType, max: lim.Inputs, name: "raw input contents"}
	if err := countRepeated(b, 5, c[:]); err != nil {
		return err
	}
	nIn, nOut, nRaw, rawBytes := c[0].n, c[1].n, c[2].n, c[2].bytes
	ins := make([]pb.ModelInferRequest_InferInputTensor, nIn)
	outs := make([]pb.ModelInferRequest_InferRequestedOutputTensor, nOut)
	if nIn > 0 {
		m.Inputs = make([]*pb.ModelInferRequest_InferInputTensor, 0, nIn)
	}
	if nOut > 0 {
		m.Outputs = make([]*pb.ModelInferRequest_InferRequestedOutputTensor, 0, nOut)
	}
	var raw []byte
	if nRaw > 0 {
		m.RawInputContents = make([][]byte, 0, nRaw)
		if !alias {
			raw = make([]byte, 0, rawBytes)
		}
	}
	return eachField(b, func(f wireField) error {
		if f.typ != protowire.BytesType {
			return nil // every field of the message is length-delimited: a varint is unknown
		}
		var err error
		switch f.num {
		case 1:
			m.ModelName, err = wireString(f.b)
		case 2:
			m.ModelVersion, err = wireString(f.b)
		case 3:
			m.Id, err = wireString(f.b)
		case 4:
			err = d.param(f.b, &m.Parameters)
		case 5:
			in := &ins[len(m.Inputs)]
			m.Inputs = append(m.Inputs, in)
			err = d.input(f.b, in)
		case 6:
			out := &outs[len(m.Outputs)]
			m.Outputs = append(m.Outputs, out)
			err = d.output(f.b, out)
		case 7:
			if alias {
				m.RawInputContents = append(m.RawInputContents, f.b[:len(f.b):len(f.b)])
				break
			}
			start := len(raw)
			raw = append(raw, f.b...)
			m.RawInputContents = append(m.RawInputContents, raw[start:len(raw):len(raw)])
		}
		return err
	})
}

func wireString(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errors.New("string field contains invalid UTF-8")
	}
	return string(b), nil
}

// param decodes one map entry into *m: key 1, value 2 (an InferParameter,
// empty when absent); a repeated key's last entry wins.
func (d *wireDecoder) param(b []byte, m *map[string]*pb.InferParameter) error {
	if d.params++; d.params > d.lim.Parameters {
		return serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d parameters", d.lim.Parameters)
	}
	var key string
	val := &pb.InferParameter{}
	err := eachField(b, func(f wireField) error {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			var err error
			key, err = wireString(f.b)
			return err
		case f.num == 2 && f.typ == protowire.BytesType:
			return paramValue(f.b, val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *m == nil {
		*m = map[string]*pb.InferParameter{}
	}
	(*m)[key] = val
	return nil
}

// paramValue merges an InferParameter into p: the last choice wins.
func paramValue(b []byte, p *pb.InferParameter) error {
	return eachField(b, func(f wireField) error {
		switch {
		case f.num == 1 && f.typ == protowire.VarintType:
			p.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: protowire.DecodeBool(f.v)}
		case f.num == 2 && f.typ == protowire.VarintType:
			p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: int64(f.v)}
		case f.num == 3 && f.typ == protowire.BytesType:
			s, err := wireString(f.b)
			if err != nil {
				return err
			}
			p.ParameterChoice = &pb.InferParameter_StringParam{StringParam: s}
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			p.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: math.Float64frombits(f.v)}
		case f.num == 5 && f.typ == protowire.VarintType:
			p.ParameterChoice = &pb.InferParameter_Uint64Param{Uint64Param: f.v}
		}
		return nil
	})
}

func (d *wireDecoder) output(b []byte, out *pb.ModelInferRequest_InferRequestedOutputTensor) error {
	return eachField(b, func(f wireField) error {
		if f.typ != protowire.BytesType {
			return nil
		}
		switch f.num {
		case 1:
			var err error
			out.Name, err = wireString(f.b)
			return err
		case 2:
			return d.param(f.b, &out.Parameters)
		}
		return nil
	})
}

// counts is what the repeated fields of one tensor's contents hold, summed
// over every occurrence of its contents (occurrences of a message field
// merge). Indexed by field number rather than a []repeated: every field of
// InferTensorContents is repeated, and none needs a cap of its own (the
// tensor's elements are checked against its shape after decoding).
type counts struct {
	contents bool
	elems    [9]int // by field number of InferTensorContents
	bytes    int    // bytes_contents' total length
}

func (d *wireDecoder) input(b []byte, in *pb.ModelInferRequest_InferInputTensor) error {
	return d.tensor(b, tensorFields{&in.Name, &in.Datatype, &in.Shape, &in.Parameters, &in.Contents})
}

// tensorFields are the fields of an input tensor, or of an output tensor
// (ModelInferResponse's, with the same field numbers), that tensor fills.
type tensorFields struct {
	name, datatype *string
	shape          *[]int64
	params         *map[string]*pb.InferParameter
	contents       **pb.InferTensorContents
}

func (d *wireDecoder) tensor(b []byte, in tensorFields) error {
	var c counts
	dims := 0 // counted here rather than by a repeated: this pass is on the hot path, and add is not inlined
	err := eachField(b, func(f wireField) error {
		switch {
		case f.num == 3:
			if dims += repeatedCount(f, protowire.VarintType); dims > serving.MaxRank {
				return errRank
			}
		case f.num == 5 && f.typ == protowire.BytesType:
			c.contents = true
			return countContents(f.b, &c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if dims > 0 {
		*in.shape = make([]int64, 0, dims)
	}
	var buf []byte
	if c.contents {
		*in.contents = c.alloc()
		buf = make([]byte, 0, c.bytes)
	}
	return eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			if f.typ == protowire.BytesType {
				*in.name, err = wireString(f.b)
			}
		case 2:
			if f.typ == protowire.BytesType {
				*in.datatype, err = wireString(f.b)
			}
		case 3:
			*in.shape, err = appendVarints(*in.shape, f, func(v uint64) int64 { return int64(v) })
		case 4:
			if f.typ == protowire.BytesType {
				err = d.param(f.b, in.params)
			}
		case 5:
			if f.typ == protowire.BytesType {
				err = fillContents(f.b, *in.contents, &buf)
			}
		}
		return err
	})
}

// errRank is the error of a tensor (every tensor message has its shape in
// field 3) whose shape has more than serving.MaxRank dims.
var errRank = serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d dims in a tensor's shape", serving.MaxRank)

// repeatedCount is how many elements f adds to a repeated scalar field of
// wire type typ: one unpacked, as many as it packs (an upper bound for
// malformed packing, which the fill pass rejects).
func repeatedCount(f wireField, typ protowire.Type) int {
	switch {
	case f.typ == typ:
		return 1
	case f.typ != protowire.BytesType:
		return 0 // the wrong wire type: an unknown field
	case typ == protowire.Fixed32Type:
		return len(f.b) / 4
	case typ == protowire.Fixed64Type:
		return len(f.b) / 8
	}
	n := 0
	for _, c := range f.b {
		if c < 0x80 {
			n++
		}
	}
	return n
}

// contentsType is the wire type of each field of InferTensorContents.
var contentsType = [9]protowire.Type{1: protowire.VarintType, 2: protowire.VarintType, 3: protowire.VarintType,
	4: protowire.VarintType, 5: protowire.VarintType, 6: protowire.Fixed32Type, 7: protowire.Fixed64Type, 8: protowire.BytesType}

func countContents(b []byte, c *counts) error {
	return eachField(b, func(f wireField) error {
		switch {
		case f.num == 8 && f.typ == protowire.BytesType:
			c.elems[8]++
			c.bytes += len(f.b)
		case f.num >= 1 && f.num <= 7:
			c.elems[f.num] += repeatedCount(f, contentsType[f.num])
		}
		return nil
	})
}

func (c *counts) alloc() *pb.InferTensorContents {
	out := &pb.InferTensorContents{}
	if n := c.elems[1]; n > 0 {
		out.BoolContents = make([]bool, 0, n)
	}
	if n := c.elems[2]; n > 0 {
		out.IntContents = make([]int32, 0, n)
	}
	if n := c.elems[3]; n > 0 {
		out.Int64Contents = make([]int64, 0, n)
	}
	if n := c.elems[4]; n > 0 {
		out.UintContents = make([]uint32, 0, n)
	}
	if n := c.elems[5]; n > 0 {
		out.Uint64Contents = make([]uint64, 0, n)
	}
	if n := c.elems[6]; n > 0 {
		out.Fp32Contents = make([]float32, 0, n)
	}
	if n := c.elems[7]; n > 0 {
		out.Fp64Contents = make([]float64, 0, n)
	}
	if n := c.elems[8]; n > 0 {
		out.BytesContents = make([][]byte, 0, n)
	}
	return out
}

// fillContents appends one occurrence of contents to out; BYTES elements
// are copied into *buf, sized for them all, and share it.
func fillContents(b []byte, out *pb.InferTensorContents, buf *[]byte) error {
	return eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			out.BoolContents, err = appendVarints(out.BoolContents, f, protowire.DecodeBool)
		case 2:
			out.IntContents, err = appendVarints(out.IntContents, f, func(v uint64) int32 { return int32(v) })
		case 3:
			out.Int64Contents, err = appendVarints(out.Int64Contents, f, func(v uint64) int64 { return int64(v) })
		case 4:
			out.UintContents, err = appendVarints(out.UintContents, f, func(v uint64) uint32 { return uint32(v) })
		case 5:
			out.Uint64Contents, err = appendVarints(out.Uint64Contents, f, func(v uint64) uint64 { return v })
		case 6:
			out.Fp32Contents, err = appendFixed(out.Fp32Contents, f, protowire.Fixed32Type, 4, func(v uint64) float32 { return math.Float32frombits(uint32(v)) })
		case 7:
			out.Fp64Contents, err = appendFixed(out.Fp64Contents, f, protowire.Fixed64Type, 8, math.Float64frombits)
		case 8:
			if f.typ == protowire.BytesType {
				start := len(*buf)
				*buf = append(*buf, f.b...)
				out.BytesContents = append(out.BytesContents, (*buf)[start:len(*buf):len(*buf)])
			}
		}
		return err
	})
}

// appendVarints appends a varint field, packed or not, converting each
// value; a field of another wire type is unknown and skipped.
func appendVarints[T any](s []T, f wireField, conv func(uint64) T) ([]T, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(s, conv(f.v)), nil
	case protowire.BytesType:
		for b := f.b; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, errWire
			}
			s = append(s, conv(v))
			b = b[n:]
		}
	}
	return s, nil
}

// appendFixed is appendVarints for a fixed-size field of size bytes.
func appendFixed[T any](s []T, f wireField, typ protowire.Type, size int, conv func(uint64) T) ([]T, error) {
	switch f.typ {
	case typ:
		return append(s, conv(f.v)), nil
	case protowire.BytesType:
		if len(f.b)%size != 0 {
			return nil, errWire
		}
		for b := f.b; len(b) > 0; b = b[size:] {
			if size == 4 {
				v, _ := protowire.ConsumeFixed32(b)
				s = append(s, conv(uint64(v)))
			} else {
				v, _ := protowire.ConsumeFixed64(b)
				s = append(s, conv(v))
			}
		}
	}
	return s, nil
}

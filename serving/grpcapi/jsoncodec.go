package grpcapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// jsonCodec is Connect's JSON codec ("json", and "json; charset=utf-8" as
// browsers send it) with ModelInferRequest decoded by hand: protojson costs
// 40 to 60 bytes of memory per byte of an array of small elements, since it
// boxes every token and grows every list by append. The hand decoder counts
// each array before it allocates for it (the elements are then read in a
// second pass) and caps inputs, outputs and parameters as the binary codec
// does. It accepts what protojson.Unmarshal with DiscardUnknown accepts, as
// Connect's own JSON codec does, and makes the same message (jsoncodec_test.go
// compares the two). Other messages go to protojson.
type jsonCodec struct {
	name string
	lim  oip.Limits
}

var _ connect.Codec = jsonCodec{}

func (c jsonCodec) Name() string { return c.name }

func (jsonCodec) Marshal(m any) ([]byte, error) {
	return protoMessage(m, protojson.MarshalOptions{}.Marshal)
}

func (jsonCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	return protoMessage(m, func(pm proto.Message) ([]byte, error) { return protojson.MarshalOptions{}.MarshalAppend(dst, pm) })
}

func (c jsonCodec) Unmarshal(b []byte, m any) error {
	if len(b) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	var err error
	switch msg := m.(type) {
	case *pb.ModelInferRequest:
		err = decodeInferJSON(b, msg, c.lim)
	case proto.Message:
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, msg)
	default:
		return fmt.Errorf("grpcapi: %T is not a protobuf message", m)
	}
	if err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return nil
}

var (
	requestDesc  = (&pb.ModelInferRequest{}).ProtoReflect().Descriptor()
	inputDesc    = (&pb.ModelInferRequest_InferInputTensor{}).ProtoReflect().Descriptor()
	outputDesc   = (&pb.ModelInferRequest_InferRequestedOutputTensor{}).ProtoReflect().Descriptor()
	contentsDesc = (&pb.InferTensorContents{}).ProtoReflect().Descriptor()
	paramDesc    = (&pb.InferParameter{}).ProtoReflect().Descriptor()
)

type jsonDecoder struct {
	r      jsonReader
	lim    oip.Limits
	params int
}

func decodeInferJSON(b []byte, m *pb.ModelInferRequest, lim oip.Limits) error {
	proto.Reset(m)
	d := jsonDecoder{r: jsonReader{b: b}, lim: lim}
	err := d.message(1, requestDesc, func(num protowire.Number) error {
		var err error
		switch num {
		case 1:
			m.ModelName, err = d.string()
		case 2:
			m.ModelVersion, err = d.string()
		case 3:
			m.Id, err = d.string()
		case 4:
			err = d.paramMap(1, &m.Parameters)
		case 5:
			err = d.r.array(2, func() error {
				if len(m.Inputs) >= lim.Inputs {
					return serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d inputs", lim.Inputs)
				}
				in := &pb.ModelInferRequest_InferInputTensor{}
				m.Inputs = append(m.Inputs, in)
				return d.input(in)
			})
		case 6:
			err = d.r.array(2, func() error {
				if len(m.Outputs) >= lim.Outputs {
					return serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d outputs", lim.Outputs)
				}
				out := &pb.ModelInferRequest_InferRequestedOutputTensor{}
				m.Outputs = append(m.Outputs, out)
				return d.message(2, outputDesc, func(num protowire.Number) error {
					if num == 1 {
						var err error
						out.Name, err = d.string()
						return err
					}
					return d.paramMap(2, &out.Parameters)
				})
			})
		case 7:
			err = d.r.array(2, func() error {
				if len(m.RawInputContents) >= lim.Inputs {
					return serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d raw input contents", lim.Inputs)
				}
				buf := []byte(nil)
				v, err := d.bytes(&buf)
				m.RawInputContents = append(m.RawInputContents, v)
				return err
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	if d.r.next() != 0 {
		return errJSON
	}
	return nil
}

// message reads an object of the fields of md, a message level deep in the
// request: each field (by its JSON or proto name) at most once, a null one
// skipped, an unknown one skipped after its syntax is checked, a oneof set
// once. field reads the value of each known field.
func (d *jsonDecoder) message(level int, md protoreflect.MessageDescriptor, field func(protowire.Number) error) error {
	var seen uint64 // by field number; every number here is under 64
	oneof := false
	fields := md.Fields()
	return d.r.object(level, func(key []byte) error {
		fd := fields.ByJSONName(view(key))
		if fd == nil {
			fd = fields.ByTextName(view(key))
		}
		if fd == nil {
			return d.r.skip(level)
		}
		bit := uint64(1) << fd.Number()
		if seen&bit != 0 {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen |= bit
		if d.r.next() == 'n' && d.r.literal("null") {
			return nil
		}
		if fd.ContainingOneof() != nil {
			if oneof {
				return fmt.Errorf("oneof %v is already set", fd.ContainingOneof().FullName())
			}
			oneof = true
		}
		return field(fd.Number())
	})
}

func (d *jsonDecoder) input(in *pb.ModelInferRequest_InferInputTensor) error {
	return d.message(2, inputDesc, func(num protowire.Number) error {
		var err error
		switch num {
		case 1:
			in.Name, err = d.string()
		case 2:
			in.Datatype, err = d.string()
		case 3:
			err = d.r.array(3, func() error {
				if len(in.Shape) >= serving.MaxRank {
					return serving.Errorf(serving.InvalidArgument, "grpcapi: an input's shape has more than %d dims", serving.MaxRank)
				}
				v, err := d.int(64)
				in.Shape = append(in.Shape, v)
				return err
			})
		case 4:
			err = d.paramMap(2, &in.Parameters)
		case 5:
			in.Contents = &pb.InferTensorContents{}
			err = d.contents(in.Contents)
		}
		return err
	})
}

func (d *jsonDecoder) contents(c *pb.InferTensorContents) error {
	return d.message(3, contentsDesc, func(num protowire.Number) error {
		switch num {
		case 1:
			return readList(d, &c.BoolContents, func() (bool, error) { return d.bool() })
		case 2:
			return readList(d, &c.IntContents, func() (int32, error) { v, err := d.int(32); return int32(v), err })
		case 3:
			return readList(d, &c.Int64Contents, func() (int64, error) { return d.int(64) })
		case 4:
			return readList(d, &c.UintContents, func() (uint32, error) { v, err := d.uint(32); return uint32(v), err })
		case 5:
			return readList(d, &c.Uint64Contents, func() (uint64, error) { return d.uint(64) })
		case 6:
			return readList(d, &c.Fp32Contents, func() (float32, error) { v, err := d.float(32); return float32(v), err })
		case 7:
			return readList(d, &c.Fp64Contents, func() (float64, error) { return d.float(64) })
		}
		var buf []byte
		if err := d.sizeBytes(&buf); err != nil {
			return err
		}
		return readList(d, &c.BytesContents, func() ([]byte, error) { return d.bytes(&buf) })
	})
}

// readList reads a JSON array of scalars into *dst, sized from a count of
// its elements.
func readList[T any](d *jsonDecoder, dst *[]T, elem func() (T, error)) error {
	n, err := d.r.count()
	if err != nil {
		return err
	}
	*dst = make([]T, 0, n)
	return d.r.array(4, func() error {
		v, err := elem()
		*dst = append(*dst, v)
		return err
	})
}

// paramMap reads a map of InferParameter by name, in a message level deep.
func (d *jsonDecoder) paramMap(level int, m *map[string]*pb.InferParameter) error {
	return d.r.object(level+1, func(key []byte) error {
		if d.params++; d.params > d.lim.Parameters {
			return serving.Errorf(serving.InvalidArgument, "grpcapi: more than %d parameters", d.lim.Parameters)
		}
		if _, dup := (*m)[view(key)]; dup {
			return fmt.Errorf("duplicate map key %q", key)
		}
		k := string(key)
		p := &pb.InferParameter{}
		err := d.message(level+1, paramDesc, func(num protowire.Number) error {
			switch num {
			case 1:
				v, err := d.bool()
				p.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: v}
				return err
			case 2:
				v, err := d.int(64)
				p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: v}
				return err
			case 3:
				v, err := d.string()
				p.ParameterChoice = &pb.InferParameter_StringParam{StringParam: v}
				return err
			case 4:
				v, err := d.float(64)
				p.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: v}
				return err
			}
			v, err := d.uint(64)
			p.ParameterChoice = &pb.InferParameter_Uint64Param{Uint64Param: v}
			return err
		})
		if *m == nil {
			*m = map[string]*pb.InferParameter{}
		}
		(*m)[k] = p
		return err
	})
}

func (d *jsonDecoder) string() (string, error) {
	s, err := d.r.text()
	return string(s), err
}

func (d *jsonDecoder) bool() (bool, error) {
	switch {
	case d.r.literal("true"):
		return true, nil
	case d.r.literal("false"):
		return false, nil
	}
	return false, errJSON
}

// numberText is a number, or a string that holds exactly one (proto3 JSON
// writes 64-bit integers as strings).
func (d *jsonDecoder) numberText() ([]byte, error) {
	if d.r.next() == '"' {
		s, err := d.r.text()
		if err != nil || len(s) == 0 || numberLen(s) != len(s) {
			return nil, errJSON
		}
		return s, nil
	}
	tok, ok := d.r.number()
	if !ok {
		return nil, errJSON
	}
	return tok, nil
}

func (d *jsonDecoder) int(bits int) (int64, error) {
	tok, err := d.numberText()
	if err != nil {
		return 0, err
	}
	var buf [24]byte
	s, ok := intText(tok, &buf)
	if !ok {
		return 0, errJSON
	}
	return strconv.ParseInt(view(s), 10, bits)
}

func (d *jsonDecoder) uint(bits int) (uint64, error) {
	tok, err := d.numberText()
	if err != nil {
		return 0, err
	}
	var buf [24]byte
	s, ok := intText(tok, &buf)
	if !ok {
		return 0, errJSON
	}
	return strconv.ParseUint(view(s), 10, bits)
}

func (d *jsonDecoder) float(bits int) (float64, error) {
	if d.r.next() == '"' {
		start := d.r.i
		s, err := d.r.text()
		if err != nil {
			return 0, err
		}
		switch view(s) {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		d.r.i = start
	}
	tok, err := d.numberText()
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(view(tok), bits)
}

// intText writes an integer written as a JSON number (with a fraction or an
// exponent, if the value is whole) in plain digits, as protojson reads one:
// "1e2" is 100, "1.0" is 1, "-0" is 0; false for a fraction or more than 20
// digits.
func intText(tok []byte, buf *[24]byte) ([]byte, bool) {
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	var intp, frac, exp []byte
	i := 0
	if tok[0] != '0' {
		for i < len(tok) && '0' <= tok[i] && tok[i] <= '9' {
			i++
		}
		intp = tok[:i]
	} else {
		i = 1
	}
	if i < len(tok) && tok[i] == '.' {
		j := i + 1
		for j < len(tok) && '0' <= tok[j] && tok[j] <= '9' {
			j++
		}
		frac = tok[i+1 : j]
		for len(frac) > 0 && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		i = j
	}
	if i < len(tok) {
		exp = tok[i+1:]
	}
	if len(intp) == 0 && len(frac) == 0 {
		return append(buf[:0], '0'), true
	}
	e := 0
	if len(exp) > 0 {
		v, err := strconv.ParseInt(view(exp), 10, 32)
		if err != nil {
			return nil, false
		}
		e = int(v)
	}
	out := buf[:0]
	if neg {
		out = append(out, '-')
	}
	if e >= 0 {
		if len(frac) > e || len(intp)+e > 20 {
			return nil, false
		}
		out = append(append(out, intp...), frac...)
		for range e - len(frac) {
			out = append(out, '0')
		}
		return out, true
	}
	at := len(intp) + e
	if len(frac) > 0 || at < 0 || at > 20 {
		return nil, false
	}
	for _, c := range intp[at:] {
		if c != '0' {
			return nil, false
		}
	}
	return append(out, intp[:at]...), true
}

// sizeBytes makes *buf room for the decoded bytes of every element of the
// array of base64 strings at i, so that they share it.
func (d *jsonDecoder) sizeBytes(buf *[]byte) error {
	start, total := d.r.i, 0
	err := d.r.array(4, func() error {
		if d.r.next() == '"' {
			raw, _, err := d.r.str()
			total += len(raw)*6/8 + 3 // base64's decoded length, padded or not
			return err
		}
		return d.r.skip(4)
	})
	d.r.i = start
	*buf = make([]byte, 0, total)
	return err
}

// bytes reads a base64 string (standard or URL alphabet, padded or not, as
// protojson takes it) into the room left in *buf.
func (d *jsonDecoder) bytes(buf *[]byte) ([]byte, error) {
	s, err := d.r.text()
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding
	for _, c := range s {
		if c == '-' || c == '_' {
			enc = base64.URLEncoding
			break
		}
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	need := enc.DecodedLen(len(s))
	if cap(*buf)-len(*buf) < need {
		*buf = make([]byte, 0, need) // raw contents: one buffer each
	}
	start := len(*buf)
	n, err := enc.Decode((*buf)[start:start+need], s)
	if err != nil {
		return nil, errJSON
	}
	*buf = (*buf)[:start+n]
	return (*buf)[start : start+n : start+n], nil
}

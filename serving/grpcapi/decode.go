package grpcapi

import (
	"math"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// DecodeRequest turns a ModelInferRequest into a serving.Request: model,
// version, id, parameters, requested outputs, and inputs from typed contents
// or raw_input_contents. maxElements bounds each input tensor, checked from
// the shape before anything is allocated. Every malformed message is an
// InvalidArgument error naming the tensor (Unimplemented for Triton's shared
// memory inputs); it never panics.
//
// The inputs share the message's memory where the element types agree
// (FP32 contents become the tensor's []float32), so the message must not be
// modified while the request is in use.
func DecodeRequest(msg *pb.ModelInferRequest, maxElements int64) (*serving.Request, error) {
	params, err := decodeParams(msg.GetParameters())
	if err != nil {
		return nil, err
	}
	for _, in := range msg.GetInputs() {
		if _, ok := in.GetParameters()["shared_memory_region"]; ok {
			return nil, serving.Errorf(serving.Unimplemented, "grpcapi: input %q: shared memory inputs are not supported; send contents or raw_input_contents", in.GetName())
		}
	}
	inputs, err := decodeTensors(msg.GetInputs(), msg.GetRawInputContents(), maxElements, "input")
	if err != nil {
		return nil, err
	}
	req := &serving.Request{
		ID:      msg.GetId(),
		Model:   msg.GetModelName(),
		Version: msg.GetModelVersion(),
		Inputs:  inputs,
		Params:  params,
	}
	if outs := msg.GetOutputs(); len(outs) > 0 {
		req.Outputs = make([]string, len(outs))
		seen := make(map[string]struct{}, len(outs))
		for i, o := range outs {
			name := o.GetName()
			if _, dup := seen[name]; dup {
				return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: output %q asked for twice", name)
			}
			seen[name] = struct{}{}
			req.Outputs[i] = name
		}
	}
	return req, nil
}

// classifications reads Triton's classification extension from the
// requested outputs: parameters["classification"], an int64_param (as
// Triton's client sends it) or uint64_param of 1 to
// serving.MaxClassification, asks for that output's top classes.
func classifications(msg *pb.ModelInferRequest) ([]serving.Classification, error) {
	var cs []serving.Classification
	for _, o := range msg.GetOutputs() {
		p, ok := o.GetParameters()[serving.ParamClassification]
		if !ok {
			continue
		}
		var k int64
		switch v := p.GetParameterChoice().(type) {
		case *pb.InferParameter_Int64Param:
			k = v.Int64Param
		case *pb.InferParameter_Uint64Param:
			k = int64(min(v.Uint64Param, math.MaxInt64))
		default:
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: output %q: classification must be an int64_param", o.GetName())
		}
		if k < 1 || k > serving.MaxClassification {
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: output %q: classification must be 1 to %d, got %d", o.GetName(), serving.MaxClassification, k)
		}
		cs = append(cs, serving.Classification{Output: o.GetName(), K: k})
	}
	return cs, nil
}

// DecodeResponse turns a ModelInferResponse into a serving.Response, reading
// outputs from raw_output_contents or typed contents: what a Go client of
// the service needs. Malformed answers are InvalidArgument errors.
func DecodeResponse(msg *pb.ModelInferResponse) (*serving.Response, error) {
	params, err := decodeParams(msg.GetParameters())
	if err != nil {
		return nil, err
	}
	outputs, err := decodeTensors(msg.GetOutputs(), msg.GetRawOutputContents(), serving.MaxElements, "output")
	if err != nil {
		return nil, err
	}
	return &serving.Response{ID: msg.GetId(), Model: msg.GetModelName(), Version: msg.GetModelVersion(), Outputs: outputs, Params: params}, nil
}

// wireTensor is what InferInputTensor and InferOutputTensor have in common.
type wireTensor interface {
	GetName() string
	GetDatatype() string
	GetShape() []int64
	GetContents() *pb.InferTensorContents
}

func decodeTensors[T wireTensor](ts []T, raw [][]byte, maxElements int64, what string) ([]serving.Tensor, error) {
	if len(raw) > 0 && len(raw) != len(ts) {
		return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %d raw contents for %d %ss; raw contents need one entry per %s, in order", len(raw), len(ts), what, what)
	}
	out := make([]serving.Tensor, len(ts))
	var seen map[string]struct{} // past a few names: linear, not pairwise
	for i, w := range ts {
		name := w.GetName()
		if dupName(ts[:i], name, &seen) {
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q given twice", what, name)
		}
		dt, err := serving.ParseDataType(w.GetDatatype())
		if err != nil {
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q: unknown datatype %q", what, name, w.GetDatatype())
		}
		shape := w.GetShape()
		n, err := serving.NumElements(shape)
		if err != nil {
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q: %w", what, name, err)
		}
		if n > maxElements {
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q: shape %v has %d elements, more than the limit of %d", what, name, shape, n, maxElements)
		}
		c := w.GetContents()
		if len(raw) > 0 {
			if !emptyContents(c) {
				return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q has contents while raw contents are used; send one or the other", what, name)
			}
			// Each BYTES element needs its 4-byte length: check before
			// FromRaw allocates n element headers for a short message.
			if dt == serving.Bytes && n > int64(len(raw[i])/4) {
				return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q: %d raw bytes cannot hold %d BYTES elements", what, name, len(raw[i]), n)
			}
			t, err := serving.FromRaw(name, dt, shape, raw[i])
			if err != nil {
				return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q: %w", what, name, err)
			}
			out[i] = t
			continue
		}
		t, err := fromContents(name, dt, shape, int(n), c)
		if err != nil {
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: %s %q: %w", what, name, err)
		}
		out[i] = t
	}
	return out, nil
}

// dupName reports whether name is among the names of prev (the tensors
// before it), comparing with each while they are few and through *seen, a
// set kept from then on, past that.
func dupName[T wireTensor](prev []T, name string, seen *map[string]struct{}) bool {
	const few = 8
	if len(prev) < few {
		for _, p := range prev {
			if p.GetName() == name {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]struct{}, 2*few)
		for _, p := range prev {
			(*seen)[p.GetName()] = struct{}{}
		}
	}
	if _, ok := (*seen)[name]; ok {
		return true
	}
	(*seen)[name] = struct{}{}
	return false
}

// field names the typed field of each datatype, for error messages.
func field(dt serving.DataType) string {
	switch dt {
	case serving.Bool:
		return "bool_contents"
	case serving.Int8, serving.Int16, serving.Int32:
		return "int_contents"
	case serving.Int64:
		return "int64_contents"
	case serving.Uint8, serving.Uint16, serving.Uint32:
		return "uint_contents"
	case serving.Uint64:
		return "uint64_contents"
	case serving.FP32:
		return "fp32_contents"
	case serving.FP64:
		return "fp64_contents"
	case serving.Bytes:
		return "bytes_contents"
	}
	return ""
}

// lengths lists how many elements each typed field holds, in field order.
func lengths(c *pb.InferTensorContents) [8]int {
	return [8]int{len(c.GetBoolContents()), len(c.GetIntContents()), len(c.GetInt64Contents()), len(c.GetUintContents()),
		len(c.GetUint64Contents()), len(c.GetFp32Contents()), len(c.GetFp64Contents()), len(c.GetBytesContents())}
}

var fieldOrder = [8]string{"bool_contents", "int_contents", "int64_contents", "uint_contents", "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"}

func emptyContents(c *pb.InferTensorContents) bool { return lengths(c) == [8]int{} }

// fromContents builds a tensor from the typed field of its datatype, after
// checking that no other field is used and the count matches the shape.
// Narrow integer types are range-checked: 300 is not an INT8.
func fromContents(name string, dt serving.DataType, shape []int64, n int, c *pb.InferTensorContents) (serving.Tensor, error) {
	want := field(dt)
	if want == "" {
		return serving.Tensor{}, serving.Errorf(serving.InvalidArgument, "%v has no typed contents field; send it in raw_input_contents", dt)
	}
	got := 0
	for i, l := range lengths(c) {
		if l == 0 {
			continue
		}
		if fieldOrder[i] != want {
			return serving.Tensor{}, serving.Errorf(serving.InvalidArgument, "datatype %v takes %s, got %s", dt, want, fieldOrder[i])
		}
		got = l
	}
	if got != n {
		return serving.Tensor{}, serving.Errorf(serving.InvalidArgument, "shape %v holds %d elements, %s has %d", shape, n, want, got)
	}
	switch dt {
	case serving.Bool:
		return serving.NewTensor(name, shape, c.GetBoolContents())
	case serving.Int8:
		return narrow[int8](name, shape, c.GetIntContents(), math.MinInt8, math.MaxInt8)
	case serving.Int16:
		return narrow[int16](name, shape, c.GetIntContents(), math.MinInt16, math.MaxInt16)
	case serving.Int32:
		return serving.NewTensor(name, shape, c.GetIntContents())
	case serving.Int64:
		return serving.NewTensor(name, shape, c.GetInt64Contents())
	case serving.Uint8:
		return narrow[uint8](name, shape, c.GetUintContents(), 0, math.MaxUint8)
	case serving.Uint16:
		return narrow[uint16](name, shape, c.GetUintContents(), 0, math.MaxUint16)
	case serving.Uint32:
		return serving.NewTensor(name, shape, c.GetUintContents())
	case serving.Uint64:
		return serving.NewTensor(name, shape, c.GetUint64Contents())
	case serving.FP32:
		return serving.NewTensor(name, shape, c.GetFp32Contents())
	case serving.FP64:
		return serving.NewTensor(name, shape, c.GetFp64Contents())
	default: // serving.Bytes: field(dt) is empty for every other type
		return serving.NewTensor(name, shape, c.GetBytesContents())
	}
}

// narrow converts a wide protobuf field to a narrow element type, rejecting
// values out of range.
func narrow[T int8 | int16 | uint8 | uint16, W int32 | uint32](name string, shape []int64, in []W, lo, hi int64) (serving.Tensor, error) {
	out := make([]T, len(in))
	for i, v := range in {
		if int64(v) < lo || int64(v) > hi {
			var z T
			return serving.Tensor{}, serving.Errorf(serving.InvalidArgument, "element %d: %d does not fit %T", i, v, z)
		}
		out[i] = T(v)
	}
	return serving.NewTensor(name, shape, out)
}

// decodeParams maps InferParameter values to serving.Params: bool, int64,
// string and double as they are; uint64 as int64 when it fits. An unset
// oneof is an error rather than a silent nil.
func decodeParams(in map[string]*pb.InferParameter) (serving.Params, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(serving.Params, len(in))
	for k, p := range in {
		switch v := p.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			out[k] = v.BoolParam
		case *pb.InferParameter_Int64Param:
			out[k] = v.Int64Param
		case *pb.InferParameter_StringParam:
			out[k] = v.StringParam
		case *pb.InferParameter_DoubleParam:
			out[k] = v.DoubleParam
		case *pb.InferParameter_Uint64Param:
			if v.Uint64Param > math.MaxInt64 {
				return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: parameter %q: %d is out of range", k, v.Uint64Param)
			}
			out[k] = int64(v.Uint64Param)
		default:
			return nil, serving.Errorf(serving.InvalidArgument, "grpcapi: parameter %q has no value", k)
		}
	}
	return out, nil
}

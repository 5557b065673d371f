package grpcapi

import (
	"fmt"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// EncodeRequest turns a serving.Request into a ModelInferRequest with its
// inputs in raw_input_contents, the compact form every server reads: what a
// Go client of the service sends. The message shares the tensors' memory
// for fixed-size types.
func EncodeRequest(req *serving.Request) *pb.ModelInferRequest {
	msg := &pb.ModelInferRequest{
		ModelName:        req.Model,
		ModelVersion:     req.Version,
		Id:               req.ID,
		Parameters:       encodeParams(req.Params),
		Inputs:           make([]*pb.ModelInferRequest_InferInputTensor, len(req.Inputs)),
		RawInputContents: make([][]byte, len(req.Inputs)),
	}
	for i, t := range req.Inputs {
		msg.Inputs[i] = &pb.ModelInferRequest_InferInputTensor{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape}
		msg.RawInputContents[i] = t.RawBytes()
	}
	for _, o := range req.Outputs {
		msg.Outputs = append(msg.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: o})
	}
	return msg
}

// EncodeResponse turns a serving.Response into a ModelInferResponse, its
// outputs raw (raw_output_contents) or typed (each tensor's contents). An
// answer with an FP16 or BF16 output is raw whatever raw says: those types
// have no typed field, and one message cannot mix the forms. The message
// shares the tensors' memory where it can.
func EncodeResponse(resp *serving.Response, raw bool) *pb.ModelInferResponse {
	msg := &pb.ModelInferResponse{
		ModelName:    resp.Model,
		ModelVersion: resp.Version,
		Id:           resp.ID,
		Parameters:   encodeParams(resp.Params),
		Outputs:      make([]*pb.ModelInferResponse_InferOutputTensor, len(resp.Outputs)),
	}
	for _, t := range resp.Outputs {
		raw = raw || field(t.DataType) == ""
	}
	if raw {
		msg.RawOutputContents = make([][]byte, len(resp.Outputs))
	}
	for i, t := range resp.Outputs {
		o := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.DataType.String(), Shape: t.Shape}
		if raw {
			msg.RawOutputContents[i] = t.RawBytes()
		} else {
			o.Contents = contents(t)
		}
		msg.Outputs[i] = o
	}
	return msg
}

// contents puts t's elements in the typed field of its datatype, widening
// the narrow integer types as the protocol asks.
func contents(t serving.Tensor) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	switch v := t.Data().(type) {
	case []bool:
		c.BoolContents = v
	case []int8:
		c.IntContents = widen[int32](v)
	case []int16:
		c.IntContents = widen[int32](v)
	case []int32:
		c.IntContents = v
	case []int64:
		c.Int64Contents = v
	case []uint8:
		c.UintContents = widen[uint32](v)
	case []uint16: // UINT16 only: FP16 and BF16 answers are raw
		c.UintContents = widen[uint32](v)
	case []uint32:
		c.UintContents = v
	case []uint64:
		c.Uint64Contents = v
	case []float32:
		c.Fp32Contents = v
	case []float64:
		c.Fp64Contents = v
	case [][]byte:
		c.BytesContents = v
	}
	return c
}

func widen[W int32 | uint32, T int8 | int16 | uint8 | uint16](in []T) []W {
	out := make([]W, len(in))
	for i, v := range in {
		out[i] = W(v)
	}
	return out
}

// encodeParams maps serving.Params to InferParameter values; a value of a
// type the protocol lacks travels as its string form.
func encodeParams(in serving.Params) map[string]*pb.InferParameter {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*pb.InferParameter, len(in))
	for k, v := range in {
		p := &pb.InferParameter{}
		switch v := v.(type) {
		case bool:
			p.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: v}
		case int64:
			p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: v}
		case int:
			p.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: int64(v)}
		case float64:
			p.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: v}
		case string:
			p.ParameterChoice = &pb.InferParameter_StringParam{StringParam: v}
		default:
			p.ParameterChoice = &pb.InferParameter_StringParam{StringParam: fmt.Sprint(v)}
		}
		out[k] = p
	}
	return out
}

package oipjson

import (
	"encoding/json"
	"strconv"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// HeaderContentLength is Triton's binary tensor extension header: the
// length of the JSON part of a body that is JSON followed by raw tensor
// bytes, in requests and answers alike.
const HeaderContentLength = "Inference-Header-Content-Length"

// Binary says which outputs of an answer go back as binary data; an
// *InferRequest says what its request asked for. Nil means none.
type Binary interface {
	BinaryOutput(i int) bool
}

// AppendResponse appends the V2 answer resp to b: "id" when set,
// "model_name", "model_version" when set, "parameters" when any, and its
// Outputs as given (the transport has selected them), flat and in JSON,
// except those bin marks binary, which follow the JSON raw, announced by
// parameters.binary_data_size. It returns the body and the length of its
// JSON part when some output is binary (the Inference-Header-Content-Length
// to send), else -1. NaN and ±Inf are written as nf says.
func AppendResponse(b []byte, resp *serving.Response, bin Binary, nf NonFinite) ([]byte, int) {
	b = append(b, '{')
	if resp.ID != "" {
		b = append(b, `"id":`...)
		b = appendString(b, resp.ID)
		b = append(b, ',')
	}
	b = append(b, `"model_name":`...)
	b = appendString(b, resp.Model)
	if resp.Version != "" {
		b = append(b, `,"model_version":`...)
		b = appendString(b, resp.Version)
	}
	b = appendParams(b, resp.Params)
	b = append(b, `,"outputs":[`...)
	anyBinary := false
	for i, t := range resp.Outputs {
		if i > 0 {
			b = append(b, ',')
		}
		raw := bin != nil && bin.BinaryOutput(i)
		anyBinary = anyBinary || raw
		b = appendTensor(b, t, raw, nf)
	}
	b = append(b, "]}"...)
	if !anyBinary {
		return b, -1
	}
	n := len(b)
	for i, t := range resp.Outputs {
		if bin.BinaryOutput(i) {
			b = t.AppendRaw(b)
		}
	}
	return b, n
}

// appendTensor writes one tensor of a request or an answer: its data
// flat in JSON, or, raw, its binary_data_size (the bytes follow the JSON).
func appendTensor(b []byte, t serving.Tensor, raw bool, nf NonFinite) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"datatype":"`...)
	b = append(b, t.DataType.String()...)
	b = append(b, `","shape":`...)
	b = appendShape(b, t.Shape)
	if raw {
		b = append(b, `,"parameters":{"binary_data_size":`...)
		b = strconv.AppendInt(b, int64(t.RawSize()), 10)
		return append(b, "}}"...)
	}
	b = append(b, `,"data":[`...)
	b = appendElems(b, t, 0, t.Len(), nf)
	return append(b, "]}"...)
}

// appendParams writes ,"parameters":{...} when there are any. A value
// JSON cannot hold (a NaN) drops them all rather than write invalid JSON.
func appendParams(b []byte, p serving.Params) []byte {
	if len(p) == 0 {
		return b
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return b
	}
	b = append(b, `,"parameters":`...)
	return append(b, pj...)
}

// AppendRequest appends req as a V2 infer request body: "id" when set,
// "parameters" when any, its inputs, and its outputs by name when it names
// any. With binary true every input travels raw after the JSON (Triton's
// binary tensor extension, what its clients send by default) and the
// length of the JSON part is returned, to send as
// Inference-Header-Content-Length; otherwise the data is JSON and the
// length is -1. What a Go client of a V2 server sends.
func AppendRequest(b []byte, req *serving.Request, binary bool, nf NonFinite) ([]byte, int) {
	b = append(b, '{')
	if req.ID != "" {
		b = append(b, `"id":`...)
		b = appendString(b, req.ID)
		b = append(b, ',')
	}
	b = append(b, `"inputs":[`...)
	for i, t := range req.Inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTensor(b, t, binary, nf)
	}
	b = append(b, ']')
	if len(req.Outputs) > 0 {
		b = append(b, `,"outputs":[`...)
		for i, o := range req.Outputs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, o)
			if binary {
				b = append(b, `,"parameters":{"binary_data":true}`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendParams(b, req.Params)
	b = append(b, '}')
	if !binary {
		return b, -1
	}
	n := len(b)
	for _, t := range req.Inputs {
		b = t.AppendRaw(b)
	}
	return b, n
}

// DecodeResponse decodes a V2 answer: JSON, or JSON followed by the raw
// outputs when jsonLen >= 0 (the answer's Inference-Header-Content-Length).
// It reads what AppendResponse writes and what Triton and KServe answer,
// with the request decoder's rules and bounds (lim), so an answer from an
// untrusted server costs what its bytes do. What a Go client of a V2
// server reads. Errors are InvalidArgument.
func DecodeResponse(body []byte, jsonLen int, lim oip.Limits) (*serving.Response, error) {
	out := new(InferRequest)
	var a answer
	if err := decode(out, body, jsonLen, limitsOf(lim), &a); err != nil {
		return nil, err
	}
	return &serving.Response{ID: out.Request.ID, Model: a.model, Version: a.version, Outputs: out.Request.Inputs, Params: out.Request.Params}, nil
}

package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/servekit/servekit/serving"
)

// HeaderContentLength is Triton's binary tensor extension header: the length
// of the JSON part of a body that is JSON followed by raw tensor bytes.
const HeaderContentLength = "Inference-Header-Content-Length"

type inferRequest struct {
	ID         string          `json:"id"`
	Parameters json.RawMessage `json:"parameters"`
	Inputs     []inferInput    `json:"inputs"`
	Outputs    []inferOutput   `json:"outputs"`
}

type inferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters *tensorParams   `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

type inferOutput struct {
	Name       string        `json:"name"`
	Parameters *tensorParams `json:"parameters"`
}

type tensorParams struct {
	BinaryDataSize *int64 `json:"binary_data_size"`
	BinaryData     *bool  `json:"binary_data"`
}

// decoded is a request plus what the answer must look like.
type decoded struct {
	req       serving.Request
	binaryOut map[string]bool // outputs to send raw; nil when none
	binaryAll bool            // binary_data_output: every output raw
}

func badRequest(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "httpapi: "+format, args...)
}

// readBody reads the whole body into a pooled buffer the caller returns with
// putBuf. MaxBytesReader turns an oversized body into *http.MaxBytesError.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*[]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	bp := getBuf()
	b := (*bp)[:0]
	if r.ContentLength > 0 && int64(cap(b)) < r.ContentLength {
		b = make([]byte, 0, r.ContentLength)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			return nil, err
		}
	}
	*bp = b
	return bp, nil
}

// headerLength reads the binary extension header: -1 when absent.
func headerLength(r *http.Request, bodyLen int) (int, error) {
	v := r.Header.Get(HeaderContentLength)
	if v == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > bodyLen {
		return 0, badRequest("%s %q: want a length within the %d-byte body", HeaderContentLength, v, bodyLen)
	}
	return n, nil
}

// DecodeRequest decodes a V2 infer body: JSON, or JSON followed by raw
// tensor bytes when jsonLen >= 0 (the Inference-Header-Content-Length). It
// copies what it keeps, so body may be reused afterwards. Tensors larger than
// maxElements are rejected before they are allocated.
func DecodeRequest(body []byte, jsonLen int, maxElements int64) (*serving.Request, error) {
	d, err := decodeV2(body, jsonLen, maxElements)
	if err != nil {
		return nil, err
	}
	return &d.req, nil
}

func decodeV2(body []byte, jsonLen int, maxElements int64) (*decoded, error) {
	js, bin := body, []byte(nil)
	if jsonLen >= 0 {
		if jsonLen > len(body) {
			return nil, badRequest("JSON header of %d bytes in a %d-byte body", jsonLen, len(body))
		}
		js, bin = body[:jsonLen], body[jsonLen:]
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; refuse it.
	if !utf8.Valid(js) {
		return nil, badRequest("request JSON is not valid UTF-8")
	}
	var ir inferRequest
	if err := json.Unmarshal(js, &ir); err != nil {
		return nil, badRequest("malformed request JSON: %v", err)
	}
	d := &decoded{req: serving.Request{ID: ir.ID}}
	if len(ir.Parameters) > 0 && string(ir.Parameters) != "null" {
		if err := json.Unmarshal(ir.Parameters, &d.req.Params); err != nil {
			return nil, badRequest("parameters: %v", err)
		}
		d.binaryAll, _ = d.req.Params.Bool("binary_data_output")
	}
	if len(ir.Inputs) == 0 {
		return nil, badRequest("no inputs")
	}
	d.req.Inputs = make([]serving.Tensor, len(ir.Inputs))
	for i, in := range ir.Inputs {
		for _, prev := range ir.Inputs[:i] {
			if prev.Name == in.Name {
				return nil, badRequest("input %q given twice", in.Name)
			}
		}
		t, rest, err := decodeInput(in, bin, maxElements)
		if err != nil {
			return nil, err
		}
		d.req.Inputs[i], bin = t, rest
	}
	if len(bin) != 0 {
		return nil, badRequest("%d bytes of binary data no input claims", len(bin))
	}
	if len(ir.Outputs) > 0 {
		d.req.Outputs = make([]string, len(ir.Outputs))
		for i, o := range ir.Outputs {
			if o.Name == "" {
				return nil, badRequest("output %d has no name", i)
			}
			d.req.Outputs[i] = o.Name
			if o.Parameters != nil && o.Parameters.BinaryData != nil {
				if d.binaryOut == nil {
					d.binaryOut = make(map[string]bool, len(ir.Outputs))
				}
				d.binaryOut[o.Name] = *o.Parameters.BinaryData
			}
		}
	}
	return d, nil
}

func decodeInput(in inferInput, bin []byte, maxElements int64) (serving.Tensor, []byte, error) {
	if in.Name == "" {
		return serving.Tensor{}, nil, badRequest("an input has no name")
	}
	dt, err := serving.ParseDataType(in.Datatype)
	if err != nil {
		return serving.Tensor{}, nil, badRequest("input %q: unknown datatype %q", in.Name, in.Datatype)
	}
	if in.Shape == nil {
		return serving.Tensor{}, nil, badRequest("input %q: no shape", in.Name)
	}
	n, err := serving.NumElements(in.Shape)
	if err != nil {
		return serving.Tensor{}, nil, badRequest("input %q: %v", in.Name, err)
	}
	if n > maxElements {
		return serving.Tensor{}, nil, badRequest("input %q: %d elements, the limit is %d", in.Name, n, maxElements)
	}
	if in.Parameters != nil && in.Parameters.BinaryDataSize != nil {
		size := *in.Parameters.BinaryDataSize
		if size < 0 || size > int64(len(bin)) {
			return serving.Tensor{}, nil, badRequest("input %q: binary_data_size %d, %d bytes left", in.Name, size, len(bin))
		}
		if len(in.Data) > 0 && string(in.Data) != "null" {
			return serving.Tensor{}, nil, badRequest("input %q: both data and binary_data_size", in.Name)
		}
		t, err := serving.FromRaw(in.Name, dt, in.Shape, bin[:size])
		if err != nil {
			return serving.Tensor{}, nil, badRequest("input %q: %v", in.Name, err)
		}
		return t, bin[size:], nil
	}
	if len(in.Data) == 0 {
		return serving.Tensor{}, nil, badRequest("input %q: no data", in.Name)
	}
	data, _, err := parseData(in.Data, dt, n)
	if err != nil {
		return serving.Tensor{}, nil, badRequest("input %q: %v", in.Name, err)
	}
	t, err := makeTensor(in.Name, dt, in.Shape, unbox(data))
	if err != nil {
		return serving.Tensor{}, nil, badRequest("input %q: %v", in.Name, err)
	}
	return t, bin, nil
}

package oipjson

import (
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// InferRequest is a decoded V2 infer request plus what its answer must
// look like (which outputs go back as binary data). It has room for the
// common case (one input, small shapes, short strings) so that decoding
// allocates less: a transport keeps one per request, in the allocation
// that holds its other per-request state. It must not be copied once
// decoded (its tensors may point into its own room), and its zero value
// is ready for DecodeInferRequest.
type InferRequest struct {
	Request serving.Request
	// asks are what the request asked of each of Request.Outputs
	// (binary_data, classification): one slice, not one per parameter,
	// keeps the request a size class smaller.
	asks      []outputAsk
	binaryAll bool // binary_data_output: every output raw
	one       [1]serving.Tensor
	// Short strings and small data arrays of the request live here, to save
	// an allocation each (an 8-float fraud request fits). Nothing writes to
	// it once carved out. Such an array shares its allocation with the Go
	// pointers above (and with whatever a transport keeps beside it), which
	// cgo refuses to be handed: backend/onnx copies inputs of up to 4 KiB
	// before ONNX Runtime sees them for that reason.
	words [16]uint64
	free  []uint64 // what is left of words
}

// Classifications are the outputs the request asked for with Triton's
// classification extension (an output's "classification": k parameter).
func (r *InferRequest) Classifications() []serving.Classification {
	var cs []serving.Classification
	for i, a := range r.asks {
		if a.class > 0 {
			cs = append(cs, serving.Classification{Output: r.Request.Outputs[i], K: a.class})
		}
	}
	return cs
}

// BinaryOutput reports whether output i of the answer goes back as binary
// data (Triton's binary tensor extension): its binary_data parameter, else
// the request's binary_data_output. The answer's outputs are
// Request.Outputs in order when the request named any.
func (r *InferRequest) BinaryOutput(i int) bool {
	if i < len(r.asks) && r.asks[i].set {
		return r.asks[i].binary
	}
	return r.binaryAll
}

// outputAsk is what a request asked of one output: binary_data (set says
// whether it was given) and classification (0: not asked).
type outputAsk struct {
	set, binary bool
	class       int64
}

// keepString makes a string of a JSON string's raw bytes, in the room left
// when it fits.
func (r *InferRequest) keepString(raw []byte, esc bool) string {
	if esc {
		return str(unescape(raw))
	}
	b := carve[byte](&r.free, int64(len(raw)))
	if b == nil {
		return string(raw)
	}
	return str(append(b, raw...))
}

func badRequest(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "oipjson: "+format, args...)
}

// DecodeInferRequest decodes a V2 infer body into dst, which must be a
// zero InferRequest: JSON, or JSON followed by raw tensor bytes when
// jsonLen >= 0 (Triton's Inference-Header-Content-Length). It copies what
// it keeps, so body may be reused afterwards. What it allocates is bounded
// by len(body) (serving's package doc, "Cost"): tensors over
// lim.Elements are refused from their shape, counts over the other limits
// when the one too many is met. Errors are InvalidArgument.
func DecodeInferRequest(dst *InferRequest, body []byte, jsonLen int, lim oip.Limits) error {
	return decodeV2(dst, body, jsonLen, limitsOf(lim))
}

// DecodeRequest is DecodeInferRequest for a caller that needs only the
// request (a warm-up file, a test).
func DecodeRequest(body []byte, jsonLen int, lim oip.Limits) (*serving.Request, error) {
	d := new(InferRequest)
	if err := DecodeInferRequest(d, body, jsonLen, lim); err != nil {
		return nil, err
	}
	return &d.Request, nil
}

// limits are oip.Limits as the decoders read them.
type limits struct {
	elements   int64 // per input tensor
	inputs     int
	outputs    int
	parameters int // values in "parameters", nested ones included
	instances  int // V1 rows
}

func limitsOf(l oip.Limits) limits {
	d := oip.DefaultLimits
	return limits{
		elements:   pick(l.Elements, d.Elements),
		inputs:     pick(l.Inputs, d.Inputs),
		outputs:    pick(l.Outputs, d.Outputs),
		parameters: pick(l.Parameters, d.Parameters),
		instances:  pick(l.Instances, d.Instances),
	}
}

// pick is v, or def when v is unset (zero or less).
func pick[T int | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

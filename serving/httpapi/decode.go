package httpapi

import (
	"io"
	"net/http"
	"strconv"

	"github.com/servekit/servekit/serving"
)

// HeaderContentLength is Triton's binary tensor extension header: the length
// of the JSON part of a body that is JSON followed by raw tensor bytes.
const HeaderContentLength = "Inference-Header-Content-Length"

// decoded is a request plus what the answer must look like. It has room for
// the common case (one input, small shapes) so that decoding allocates less.
type decoded struct {
	req       serving.Request
	binaryOut []outputFlag             // binary_data of each of req.Outputs
	classes   []serving.Classification // outputs answered as their top classes
	binaryAll bool                     // binary_data_output: every output raw
	one       [1]serving.Tensor
	hdr       bodyHeaders // the answer's header values
	// Short strings and small data arrays of the request live here, to save
	// an allocation each (an 8-float fraud request fits). Nothing writes to
	// it once carved out. Such an array shares its allocation with the Go
	// pointers above, which cgo refuses to be handed: backend/onnx copies
	// inputs of up to 4 KiB before ONNX Runtime sees them for that reason.
	words [16]uint64
	free  []uint64 // what is left of words
}

func newDecoded() *decoded {
	out := new(decoded)
	out.free = out.words[:]
	return out
}

// keepString makes a string of a JSON string's raw bytes, in the room left
// when it fits.
func (out *decoded) keepString(raw []byte, esc bool) string {
	if esc {
		return str(unescape(raw))
	}
	b := carve[byte](&out.free, int64(len(raw)))
	if b == nil {
		return string(raw)
	}
	return str(append(b, raw...))
}

type outputFlag struct{ set, binary bool }

// binary reports whether output i of the answer is written raw. The answer's
// outputs are req.Outputs in order when the request named any.
func (out *decoded) binary(i int) bool {
	if i < len(out.binaryOut) && out.binaryOut[i].set {
		return out.binaryOut[i].binary
	}
	return out.binaryAll
}

func badRequest(format string, args ...any) error {
	return serving.Errorf(serving.InvalidArgument, "httpapi: "+format, args...)
}

// readBody reads the whole body into a pooled buffer the caller returns with
// putBuf. MaxBytesReader turns an oversized body into *http.MaxBytesError.
//
// The buffer grows as the bytes arrive, doubling, never past what has
// arrived plus as much again: a Content-Length is a claim, and a client that
// declares 16 MiB and sends nothing must cost nothing. The length only caps
// the last step, so an honest body of n bytes allocates less than 3n in all
// (2n when n is a power of two), and none at all when it fits a pooled
// buffer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*[]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	// A known length is enforced by net/http already: MaxBytesReader (an
	// allocation) is only needed when the length is not known.
	var body io.Reader = r.Body
	if r.ContentLength < 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	bp := getBuf()
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			// Full: the body may be all here. Look for one more byte before
			// growing, so a body that fills the buffer exactly costs no copy.
			var one [1]byte
			n, err := body.Read(one[:])
			if n == 0 {
				if err == nil {
					continue
				}
				if err == io.EOF {
					break
				}
				return nil, failBody(bp, b, err)
			}
			b = growBody(b, r.ContentLength, limit)
			b = append(b, one[0])
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, failBody(bp, b, err)
			}
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit { // a Body that yields more than it declared
			err = &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, failBody(bp, b, err)
		}
	}
	*bp = b
	return bp, nil
}

// growBody doubles a full buffer, to no more than the declared length
// (when there is one and it is not yet reached) and the limit plus one (so
// that a body over the limit is seen).
func growBody(b []byte, declared, limit int64) []byte {
	n := max(2*int64(cap(b)), 4096)
	if declared > int64(len(b)) {
		n = min(n, declared)
	}
	n = min(n, limit+1)
	grown := make([]byte, len(b), max(n, int64(len(b))+1))
	copy(grown, b)
	return grown
}

func failBody(bp *[]byte, b []byte, err error) error {
	*bp = b
	putBuf(bp)
	return err
}

// headerLength reads the binary extension header: -1 when absent.
func headerLength(r *http.Request, bodyLen int) (int, error) {
	v := header(r.Header, HeaderContentLength)
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
// maxElements are rejected before they are allocated; the other limits are
// New's defaults. What it allocates is bounded by len(body) (package doc,
// "Cost").
func DecodeRequest(body []byte, jsonLen int, maxElements int64) (*serving.Request, error) {
	lim := defaultLimits
	lim.elements = maxElements
	d, err := decodeV2(body, jsonLen, lim)
	if err != nil {
		return nil, err
	}
	return &d.req, nil
}

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
	binaryOut []outputFlag // outputs that asked for binary_data; last wins
	binaryAll bool         // binary_data_output: every output raw
	one       [1]serving.Tensor
	hdr       bodyHeaders // the answer's header values
	// Short strings and small data arrays of the request live here, to save
	// an allocation each (an 8-float fraud request fits). Nothing writes to
	// it once carved out.
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

type outputFlag struct {
	name   string
	binary bool
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
	// A known length is enforced by net/http already: MaxBytesReader (an
	// allocation) is only needed when the length is not known.
	var body io.Reader = r.Body
	if r.ContentLength < 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
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
		if int64(len(b)) > limit { // a Body that yields more than it declared
			err = &http.MaxBytesError{Limit: limit}
		}
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
// maxElements are rejected before they are allocated.
func DecodeRequest(body []byte, jsonLen int, maxElements int64) (*serving.Request, error) {
	d, err := decodeV2(body, jsonLen, maxElements)
	if err != nil {
		return nil, err
	}
	return &d.req, nil
}

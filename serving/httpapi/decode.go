package httpapi

import (
	"io"
	"net/http"
	"strconv"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// HeaderContentLength is Triton's binary tensor extension header: the length
// of the JSON part of a body that is JSON followed by raw tensor bytes.
const HeaderContentLength = oipjson.HeaderContentLength

// inferCall is what the handler keeps for one infer request, in one
// allocation: the decoded request and the record of where its time went.
type inferCall struct {
	oipjson.InferRequest
	timing serving.Timing
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
	bp := oipjson.Buffer()
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
	oipjson.PutBuffer(bp)
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
// the defaults. What it allocates is bounded by len(body) (serving's
// package doc, "Cost").
//
// Deprecated: use oipjson.DecodeRequest, the codec every transport shares.
func DecodeRequest(body []byte, jsonLen int, maxElements int64) (*serving.Request, error) {
	lim := oip.DefaultLimits
	lim.Elements = maxElements
	return oipjson.DecodeRequest(body, jsonLen, lim)
}

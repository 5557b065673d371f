package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// StatusClientClosedRequest is the status logged when the client went away
// before the answer (nginx's 499). The client never sees it.
const StatusClientClosedRequest = 499

var statusOf = map[serving.Code]int{
	serving.OK:                http.StatusOK,
	serving.InvalidArgument:   http.StatusBadRequest,
	serving.NotFound:          http.StatusNotFound,
	serving.ResourceExhausted: http.StatusTooManyRequests,
	serving.Canceled:          StatusClientClosedRequest,
	serving.Unauthenticated:   http.StatusUnauthorized,
	serving.PermissionDenied:  http.StatusForbidden,
	serving.Unimplemented:     http.StatusNotImplemented,
	serving.Unavailable:       http.StatusServiceUnavailable,
	serving.DeadlineExceeded:  http.StatusGatewayTimeout,
}

// Status maps an error to its HTTP status: InvalidArgument 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404,
// ResourceExhausted 429, Canceled 499, Unimplemented 501, Unavailable 503,
// DeadlineExceeded 504, anything else 500. A body over the limit is 413.
func Status(err error) int {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	if status, ok := statusOf[serving.CodeOf(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// writeError writes {"error": "..."} with the mapped status, and Retry-After
// for 429 and 503 (the error's hint, else def, rounded up to whole seconds).
func writeError(w http.ResponseWriter, err error, def time.Duration) {
	status := Status(err)
	hdr := w.Header()
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		d := serving.RetryAfterOf(err)
		if d <= 0 {
			d = def
		}
		if d > 0 {
			setRetryAfter(hdr, d)
		}
	}
	if status == http.StatusUnauthorized { // as the admin API answers it
		hdr.Set("WWW-Authenticate", `Bearer realm="servekit-admin"`)
	}
	bp := oipjson.Buffer()
	b := append((*bp)[:0], `{"error":`...)
	b = oipjson.AppendString(b, err.Error())
	b = append(b, "}\n"...)
	setBody(hdr, typeJSON, len(b))
	w.WriteHeader(status)
	w.Write(b)
	*bp = b
	oipjson.PutBuffer(bp)
}

// setRetryAfter sets Retry-After to d in whole seconds, rounded up.
func setRetryAfter(hdr http.Header, d time.Duration) {
	hdr.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
}

// The answers' Content-Type values, shared by every answer: assigning one
// to the header map costs neither the slice nor the key canonicalisation
// of Header.Set. net/http only reads them, and Header.Set and Add replace
// or copy a slice (its capacity is its length), so nobody writes into them.
var (
	typeJSON   = []string{"application/json"}
	typeBinary = []string{"application/octet-stream"}
)

// chunkingThreshold is net/http's bufferBeforeChunkingSize: an answer of
// up to this many bytes written in one Write before the handler returns is
// measured by net/http, which sends its Content-Length from a buffer of
// its own. Only longer answers need one from the handler (else they go
// out chunked).
const chunkingThreshold = 2048

// setBody sets the headers of an answer of n bytes of contentType, to be
// written in one Write.
func setBody(hdr http.Header, contentType []string, n int) {
	hdr["Content-Type"] = contentType
	if n > chunkingThreshold {
		hdr["Content-Length"] = []string{strconv.Itoa(n)}
	}
}

// header is Header.Get for a key already in canonical form.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

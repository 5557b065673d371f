package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"
	"unsafe"

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
	setBody(hdr, "application/json", len(b))
	w.WriteHeader(status)
	w.Write(b)
	*bp = b
	oipjson.PutBuffer(bp)
}

// setRetryAfter sets Retry-After to d in whole seconds, rounded up.
func setRetryAfter(hdr http.Header, d time.Duration) {
	hdr.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
}

// bodyHeaders holds an answer's two header values in one allocation
// (Header.Set makes a slice per value, and canonicalises the key each time).
type bodyHeaders struct {
	ct, cl [1]string
	buf    [20]byte
}

func setBody(hdr http.Header, contentType string, n int) { new(bodyHeaders).set(hdr, contentType, n) }

// set fills bh and points the header at it. bh must not be used again.
func (bh *bodyHeaders) set(hdr http.Header, contentType string, n int) {
	bh.ct[0] = contentType
	num := strconv.AppendInt(bh.buf[:0], int64(n), 10) // fits: never written again
	bh.cl[0] = unsafe.String(&bh.buf[0], len(num))
	hdr["Content-Type"] = bh.ct[:]
	hdr["Content-Length"] = bh.cl[:]
}

// header is Header.Get for a key already in canonical form.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/servekit/servekit/serving"
)

// StatusClientClosedRequest is the status logged when the client went away
// before the answer (nginx's 499). The client never sees it.
const StatusClientClosedRequest = 499

// Status maps an error to its HTTP status: InvalidArgument 400, NotFound 404,
// ResourceExhausted 429, Canceled 499, Unimplemented 501, Unavailable 503,
// DeadlineExceeded 504, anything else 500. A body over the limit is 413.
func Status(err error) int {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	switch serving.CodeOf(err) {
	case serving.OK:
		return http.StatusOK
	case serving.InvalidArgument:
		return http.StatusBadRequest
	case serving.NotFound:
		return http.StatusNotFound
	case serving.ResourceExhausted:
		return http.StatusTooManyRequests
	case serving.Canceled:
		return StatusClientClosedRequest
	case serving.Unimplemented:
		return http.StatusNotImplemented
	case serving.Unavailable:
		return http.StatusServiceUnavailable
	case serving.DeadlineExceeded:
		return http.StatusGatewayTimeout
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
			hdr.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
		}
	}
	bp := getBuf()
	b := append((*bp)[:0], `{"error":`...)
	b = appendString(b, err.Error())
	b = append(b, "}\n"...)
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	*bp = b
	putBuf(bp)
}

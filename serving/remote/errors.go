package remote

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/servekit/servekit/serving"
)

// statusCode maps an HTTP status to the serving code a server meant, as
// servekit's REST transport maps codes to statuses (and Triton and KServe
// answer): the inverse of httpapi's table.
func statusCode(status int) serving.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return serving.InvalidArgument
	case http.StatusNotFound:
		return serving.NotFound
	case http.StatusTooManyRequests:
		return serving.ResourceExhausted
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return serving.Unavailable
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return serving.DeadlineExceeded
	case 499: // client closed request (nginx, servekit)
		return serving.Canceled
	case http.StatusNotImplemented, http.StatusMethodNotAllowed:
		return serving.Unimplemented
	case http.StatusUnauthorized:
		return serving.Unauthenticated
	case http.StatusForbidden:
		return serving.PermissionDenied
	}
	return serving.Internal
}

// maxErrorBody caps what is read of an error answer: its message.
const maxErrorBody = 64 << 10

// statusError turns a non-200 answer into an error with its code, the
// message of its {"error": "..."} body (or the body's text), and the
// Retry-After delay of a 429 or 503.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(b))
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		msg = body.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e := serving.Errorf(statusCode(resp.StatusCode), "server answered %d: %s", resp.StatusCode, msg)
	if e.Code == serving.ResourceExhausted || e.Code == serving.Unavailable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP-date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(s, 0), int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// maxRetryAfter bounds the delay a server can ask for: a day, so that a
// hostile or broken server cannot park a caller's retries for ever.
const maxRetryAfter = 24 * time.Hour

// transportError gives a failure to reach the server a code: Unavailable,
// which callers retry, as gRPC does.
func transportError(err error) error {
	return serving.NewError(serving.Unavailable, err)
}

// connectCodes maps gRPC codes to serving's, which carry gRPC's names.
var connectCodes = map[connect.Code]serving.Code{
	connect.CodeCanceled:           serving.Canceled,
	connect.CodeInvalidArgument:    serving.InvalidArgument,
	connect.CodeOutOfRange:         serving.InvalidArgument,
	connect.CodeFailedPrecondition: serving.InvalidArgument,
	connect.CodeNotFound:           serving.NotFound,
	connect.CodeDeadlineExceeded:   serving.DeadlineExceeded,
	connect.CodeResourceExhausted:  serving.ResourceExhausted,
	connect.CodeUnavailable:        serving.Unavailable,
	connect.CodeAborted:            serving.Unavailable,
	connect.CodeUnimplemented:      serving.Unimplemented,
	connect.CodeUnauthenticated:    serving.Unauthenticated,
	connect.CodePermissionDenied:   serving.PermissionDenied,
}

// grpcError gives a gRPC failure its serving code and, for
// ResourceExhausted and Unavailable, the server's retry hint: a
// google.rpc.RetryInfo detail, else retry-after metadata (seconds), as
// servekit's gRPC transport sends both.
func grpcError(err error) error {
	var ae answerError
	if errors.As(err, &ae) {
		return malformed(ae.error)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return transportError(err)
	}
	code, ok := connectCodes[ce.Code()]
	if !ok {
		code = serving.Internal
	}
	e := serving.Errorf(code, "server answered %v: %s", ce.Code(), ce.Message())
	if code != serving.ResourceExhausted && code != serving.Unavailable {
		return e
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				e.RetryAfter = min(max(ri.GetRetryDelay().AsDuration(), 0), maxRetryAfter)
				return e
			}
		}
	}
	e.RetryAfter = retryAfter(ce.Meta().Get("retry-after"), time.Now())
	return e
}

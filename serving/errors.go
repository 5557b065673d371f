package serving

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Code classifies an error so every transport maps it the same way (the HTTP
// handler: 400, 404, 429, 503, 504, 500). The zero Code is OK.
type Code uint8

// The codes. They follow gRPC's names, which KServe and Triton also use.
const (
	OK                Code = iota
	Canceled               // the caller gave up
	InvalidArgument        // the request is wrong: name, dtype, shape, value
	NotFound               // no such model, version or output
	DeadlineExceeded       // the deadline passed before an answer
	ResourceExhausted      // overloaded: retry later (see RetryAfterOf)
	Unavailable            // closed, not ready, or a dependency is down
	Unimplemented          // the model or backend cannot do this
	Internal               // a bug or a backend failure
	// Unauthenticated and PermissionDenied answer admin requests (model
	// repository control, the rollout admin API): no valid credentials, or
	// credentials that may not do this. They come after Internal so that
	// the codes a Predictor returns keep their numbers.
	Unauthenticated
	PermissionDenied
)

var codeNames = [...]string{
	OK:                "ok",
	Canceled:          "canceled",
	InvalidArgument:   "invalid_argument",
	NotFound:          "not_found",
	DeadlineExceeded:  "deadline_exceeded",
	ResourceExhausted: "resource_exhausted",
	Unavailable:       "unavailable",
	Unimplemented:     "unimplemented",
	Internal:          "internal",
	Unauthenticated:   "unauthenticated",
	PermissionDenied:  "permission_denied",
}

// String returns the code in snake case ("invalid_argument"), as metrics
// label it.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", uint8(c))
}

// Error is the one error type of servekit: a Code, a message, an optional
// wrapped cause and, for overload, a hint of when to retry. Use errors.As to
// read it, or CodeOf and RetryAfterOf.
type Error struct {
	Code Code
	// RetryAfter, when positive, is how long the caller should wait before
	// retrying (HTTP Retry-After).
	RetryAfter time.Duration
	msg        string
	err        error
}

// Errorf builds an *Error; %w in format wraps a cause as fmt.Errorf does.
func Errorf(code Code, format string, args ...any) *Error {
	e := fmt.Errorf(format, args...)
	return &Error{Code: code, msg: e.Error(), err: errors.Unwrap(e)}
}

// NewError gives err a code, keeping it for errors.Is and errors.As.
func NewError(code Code, err error) *Error {
	return &Error{Code: code, msg: err.Error(), err: err}
}

func (e *Error) Error() string { return e.msg }

func (e *Error) Unwrap() error { return e.err }

// Sentinels. Compare with errors.Is; their codes come through CodeOf.
var (
	// ErrClosed is returned by Predict after Close.
	ErrClosed = Errorf(Unavailable, "serving: predictor closed")
	// ErrOverloaded is wrapped by anything that sheds load instead of queueing
	// without bound (a full batch queue, a concurrency limit).
	ErrOverloaded = Errorf(ResourceExhausted, "serving: overloaded")
	// ErrNotFound is wrapped when a model, version or output does not exist.
	ErrNotFound = Errorf(NotFound, "serving: not found")
)

// CodeOf returns the Code of err: the first *Error in its chain, else
// DeadlineExceeded or Canceled for context errors, OK for nil, Internal for
// anything else.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Internal
}

// RetryAfterOf returns the retry hint of the first *Error in err's chain that
// has one, or 0.
func RetryAfterOf(err error) time.Duration {
	for err != nil {
		if e, ok := err.(*Error); ok && e.RetryAfter > 0 {
			return e.RetryAfter
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if d := RetryAfterOf(inner); d > 0 {
					return d
				}
			}
			return 0
		default:
			return 0
		}
	}
	return 0
}

// ContextError converts ctx's error into an *Error with the matching code,
// naming what was interrupted. It returns nil while ctx is live.
func ContextError(ctx context.Context, what string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	code := Canceled
	if errors.Is(err, context.DeadlineExceeded) {
		code = DeadlineExceeded
	}
	return &Error{Code: code, msg: what + ": " + err.Error(), err: err}
}

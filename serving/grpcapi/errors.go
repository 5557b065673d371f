package grpcapi

import (
	"errors"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/servekit/servekit/serving"
)

// codeOf maps serving codes to gRPC's; serving's codes carry gRPC's names.
var codeOf = map[serving.Code]connect.Code{
	serving.Canceled:          connect.CodeCanceled,
	serving.InvalidArgument:   connect.CodeInvalidArgument,
	serving.NotFound:          connect.CodeNotFound,
	serving.DeadlineExceeded:  connect.CodeDeadlineExceeded,
	serving.ResourceExhausted: connect.CodeResourceExhausted,
	serving.Unavailable:       connect.CodeUnavailable,
	serving.Unimplemented:     connect.CodeUnimplemented,
	serving.Internal:          connect.CodeInternal,
	serving.Unauthenticated:   connect.CodeUnauthenticated,
	serving.PermissionDenied:  connect.CodePermissionDenied,
}

// Code maps an error to the gRPC status code it is answered with:
// serving's codes one to one (InvalidArgument, NotFound, ResourceExhausted,
// Unavailable, DeadlineExceeded, Canceled, Unimplemented, Unauthenticated,
// PermissionDenied), anything else Internal. A *connect.Error keeps its own code.
func Code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	if c, ok := codeOf[serving.CodeOf(err)]; ok {
		return c
	}
	return connect.CodeInternal
}

// RetryAfterKey is the response metadata that carries the retry hint of
// ResourceExhausted and Unavailable errors in whole seconds, as HTTP's
// Retry-After does, for clients that do not read status details.
const RetryAfterKey = "retry-after"

// toError makes err a *connect.Error with the mapped code. ResourceExhausted
// and Unavailable carry a retry hint twice: a google.rpc.RetryInfo detail
// (what gRPC clients with retry policies read) and retry-after metadata.
// The hint is serving.RetryAfterOf(err), else def.
func toError(err error, def time.Duration) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	code := Code(err)
	ce = connect.NewError(code, err)
	d := retryHint(code, err, def)
	if d <= 0 {
		return ce
	}
	if detail, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); derr == nil {
		ce.AddDetail(detail)
	}
	ce.Meta().Set(RetryAfterKey, seconds(d))
	return ce
}

// retryHint is the retry hint of an error answered with code: for
// ResourceExhausted and Unavailable, serving.RetryAfterOf(err), else def;
// 0 for none.
func retryHint(code connect.Code, err error, def time.Duration) time.Duration {
	if code != connect.CodeResourceExhausted && code != connect.CodeUnavailable {
		return 0
	}
	if d := serving.RetryAfterOf(err); d > 0 {
		return d
	}
	return def
}

// seconds is a retry hint in whole seconds, rounded up, as Retry-After.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

package rpctable

import (
	"context"
	"net/http"
	"time"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// Incoming is what a call carries besides its message, read the way a
// server other than the Handler holds it.
type Incoming struct {
	Ctx context.Context
	// Meta reads one metadata value of the call in ctx, its key in lower
	// case ("" when absent).
	Meta func(ctx context.Context, key string) string
	// Admin makes the request the repository RPCs' authoriser sees.
	Admin func(ctx context.Context) *http.Request
}

// Unary is one unary RPC but ModelInfer: New makes its request message,
// Call answers it, with an error carrying serving's codes.
type Unary struct {
	Name string
	New  func() any
	Call func(ctx context.Context, in Incoming, req any) (any, error)
}

// Service is the inference service as grpcapi.New's options configure it.
type Service struct {
	Unary []Unary
	// Infer answers one ModelInferRequest (ModelInfer, and each message of
	// ModelStreamInfer).
	Infer func(ctx context.Context, in Incoming, msg *pb.ModelInferRequest) (*pb.ModelInferResponse, error)
	// Decode replaces m with the request in b within the limits; m's raw
	// contents are slices of b.
	Decode func(b []byte, m *pb.ModelInferRequest) error
	// Server is the model table, for the health service.
	Server     *oip.Server
	MaxBytes   int
	RetryAfter time.Duration
	// Extra are the options made by Option, in order.
	Extra []any
}

var (
	// New returns the Service of models (a grpcapi.Models) configured by
	// opts (a []grpcapi.Option).
	New func(models, opts any) *Service
	// Option returns a grpcapi.Option that adds v to Service.Extra: how
	// grpcserver's own options travel among grpcapi's.
	Option func(v any) any
)

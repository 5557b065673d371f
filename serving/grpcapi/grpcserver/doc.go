// Package grpcserver serves servekit models over the Open Inference
// Protocol's gRPC API with grpc-go's own server (its HTTP/2 transport), for
// a port of its own, as Triton serves gRPC on 8001 beside HTTP on 8000:
// the fast path for gRPC clients (Triton's and KServe's clients,
// perf_analyzer, Kubernetes' gRPC probes, grpcurl). It serves the RPCs of
// grpcapi's Handler, the same functions behind both, with grpcapi's
// options:
//
//	import "net"
//
//	rest := httpapi.New() // the same model table as the REST port's
//	drain := make(chan struct{})
//	gs := grpcserver.New(rest, grpcapi.WithMaxTimeout(time.Second), grpcserver.WithDrain(drain))
//	ln, err := net.Listen("tcp", ":8001")
//	if err != nil {
//		log.Fatal(err)
//	}
//	go gs.Serve(ln)
//	// on SIGTERM: close(drain), wait the drain delay, then
//	err = grpcserver.Shutdown(ctx, gs)
//
// It is a package of its own, apart from grpcapi, so that a program
// serving only grpcapi's Connect handler links none of grpc-go; this one
// does. Build a program that imports it with grpc-go's -tags grpcnotrace
// (grpcapi's package doc says why and what it saves).
//
// New returns a *grpc.Server: one ServeHTTP does not fit grpc-go's
// transport, and returning grpc-go's own type lets a program add its
// services, serve TLS (grpc.Creds through WithServerOptions) or call
// GracefulStop. Besides inference.GRPCInferenceService it registers
// grpc.health.v1.Health and server reflection (v1 and v1alpha), so
// `grpcurl -plaintext host:8001 list` and calls without a .proto work.
// Health answers per model: the service name is a model's name (its
// default version), "" or "inference.GRPCInferenceService" the server as a
// whole; SERVING when ready, NOT_SERVING when not, NotFound to Check for
// an unknown model (as grpc-go's own health server answers), and every
// service NOT_SERVING once WithDrain's channel is closed, so Kubernetes'
// gRPC readiness probe fails while the server still serves. Watch looks
// again every second (nothing notifies a model's loading or readiness) and
// ends on drain, so that GracefulStop does not wait on watchers.
//
// The RPCs answer as the Connect handler's do (grpcapi's tests run every
// RPC test against both servers). Metadata is read from grpc-go's incoming
// metadata instead of HTTP headers; the repository RPCs' authoriser sees a
// request made from the call's metadata (authorization as a header), its
// method as the path and the peer as RemoteAddr. ModelInfer decodes with
// grpcapi's bounded decoder, and its errors keep their codes (grpc-go
// would make a codec's error Internal). Errors are statuses with
// grpcapi.Code's codes; ResourceExhausted and Unavailable carry a
// google.rpc.RetryInfo detail and a retry-after trailer. gzip requests are
// accepted, bounded by the message limit as they inflate.
//
// # Performance
//
// ModelInfer reads raw contents in place from the
// pooled buffer grpc-go read the message into, which goes back to the pool
// once the call has answered: serving.FromRaw's copy into the tensor is
// the only one (an interceptor or a stream may keep the message, so there
// the contents are copied first). Messages themselves are not pooled: a
// Predictor may keep its request past the answer (shadow traffic, a
// batch) and typed contents are used in place, so a recycled message
// could change a tensor under it; the answer cannot be recycled either,
// since stats handlers and binary logging see it after it is written.
// There is no per-call reflection: every message has generated fast-path
// code, and the service descriptor is written by hand (server.go). Calls
// run on 64 long-lived goroutines (grpc.NumStreamWorkers) rather than one
// started per call, whose stack grew, by copying, twice in every call;
// with an interceptor, ModelInfer passes it one UnaryServerInfo and
// handler made by New (an interceptor must not change the info).
// The HTTP/2 settings and why are in transport.go.
package grpcserver

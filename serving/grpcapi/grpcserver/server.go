package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // gzip requests, as the Connect handler takes them; bounded by MaxRecvMsgSize as they inflate
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/grpcapi/internal/rpctable"
)

// New returns a grpc-go server of the models of m's Server: the same
// inference.GRPCInferenceService grpcapi's Handler serves, over grpc-go's
// own HTTP/2 transport, for a port of its own (Triton's 8001), plus the
// standard grpc.health.v1.Health service, answering per model, and server
// reflection. Serve it on a listener; stop it with Shutdown (after
// closing WithDrain's channel), GracefulStop or Stop:
//
//	import "net"
//
//	gs := grpcserver.New(oip.NewServer()) // or an *httpapi.Handler
//	ln, err := net.Listen("tcp", ":8001")
//	if err != nil {
//		log.Fatal(err)
//	}
//	go gs.Serve(ln)
//	defer gs.Stop()
//
// Every RPC is the Handler's, the same functions behind both servers; the
// Handler's options apply (limits, headers, output contents, retry hint),
// except grpcapi.WithFallback and grpcapi.WithHandlerOptions, which are
// Connect's; WithServerOptions passes grpc-go's, WithDrain the drain.
func New(m grpcapi.Models, opts ...grpcapi.Option) *grpc.Server {
	svc := rpctable.New(m, opts)
	s := &server{svc: svc}
	sopts := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(svc.MaxBytes)}, transportOptions()...)
	for _, e := range svc.Extra {
		switch e := e.(type) {
		case serverOptions:
			sopts = append(sopts, e...)
		case drainOption:
			s.drain = e.c
		}
	}
	// The bounded decoder of ModelInferRequest, as the Handler's (a
	// request costs what it sent: grpcapi's package doc, "Limits"), last
	// so that no option replaces it: ModelInfer decodes into a message of
	// its own that only this codec knows.
	sopts = append(sopts, grpc.ForceServerCodecV2(nativeCodec{svc.Decode}))
	gs := grpc.NewServer(sopts...)
	s.inferInfo = &grpc.UnaryServerInfo{Server: s, FullMethod: modelInferMethod}
	s.inferNext = func(ctx context.Context, req any) (any, error) {
		return s.serveInfer(ctx, nil, req.(*pb.ModelInferRequest))
	}
	desc := grpc.ServiceDesc{
		ServiceName: inferencepbconnect.GRPCInferenceServiceName,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "ModelInfer", Handler: modelInfer}},
		Streams: []grpc.StreamDesc{
			{StreamName: "ModelStreamInfer", Handler: modelStreamInfer, ServerStreams: true, ClientStreams: true},
		},
		Metadata: "grpc_predict_v2.proto",
	}
	for _, u := range svc.Unary {
		desc.Methods = append(desc.Methods, unaryMethod(u))
	}
	gs.RegisterService(&desc, s)
	healthpb.RegisterHealthServer(gs, &health{srv: svc.Server, drain: s.drain})
	reflection.Register(gs)
	return gs
}

// server is what grpc-go's handlers serve: grpcapi's RPCs (rpctable).
type server struct {
	svc   *rpctable.Service
	drain <-chan struct{}
	// inferInfo and inferNext are ModelInfer's for interceptors, made
	// once rather than per call.
	inferInfo *grpc.UnaryServerInfo
	inferNext grpc.UnaryHandler
}

// WithServerOptions passes options to grpc-go's server (New), after its
// own, so they win: credentials (TLS), interceptors, stats handlers
// (otelgrpc), keepalive, grpc.MaxConcurrentStreams or the flow-control
// windows. The codec is New's and stays (a grpc.ForceServerCodecV2 here is
// overridden): ModelInfer's bounded decoder is in it. grpcapi's Handler
// ignores them.
func WithServerOptions(opts ...grpc.ServerOption) grpcapi.Option {
	return rpctable.Option(serverOptions(opts)).(grpcapi.Option)
}

// WithDrain gives the server (New) the channel a program closes when it
// starts to drain (on SIGTERM, before GracefulStop): from then on the
// health service answers NOT_SERVING for the server and every model, so
// probes and load balancers take the server out while it still serves,
// and Watch calls end, so GracefulStop does not wait on them. grpcapi's
// Handler ignores it.
func WithDrain(c <-chan struct{}) grpcapi.Option {
	return rpctable.Option(drainOption{c}).(grpcapi.Option)
}

type (
	serverOptions []grpc.ServerOption
	drainOption   struct{ c <-chan struct{} }
)

// incoming is a grpc-go call's metadata for the RPCs.
func incoming(ctx context.Context) rpctable.Incoming {
	return rpctable.Incoming{Ctx: ctx, Meta: metaValue, Admin: adminRequest}
}

func metaValue(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// unaryMethod serves one of the RPCs through grpc-go: decode, the
// interceptors, the RPC, its error as a gRPC status.
func unaryMethod(u rpctable.Unary) grpc.MethodDesc {
	full := "/" + inferencepbconnect.GRPCInferenceServiceName + "/" + u.Name
	return grpc.MethodDesc{MethodName: u.Name, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		s := srv.(*server)
		in := u.New()
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (_ any, err error) {
			defer s.recoverCall(ctx, full, &err)
			out, err := u.Call(ctx, incoming(ctx), req)
			if err != nil {
				return nil, s.status(ctx, err)
			}
			return out, nil
		}
		if icpt == nil {
			return call(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
	}}
}

const (
	modelInferMethod       = "/" + inferencepbconnect.GRPCInferenceServiceName + "/ModelInfer"
	modelStreamInferMethod = "/" + inferencepbconnect.GRPCInferenceServiceName + "/ModelStreamInfer"
)

// modelInfer is ModelInfer for grpc-go: the request decodes into an
// inferCall (codec.go), which carries a decoding error out with its code
// (grpc-go would make every codec error Internal).
func modelInfer(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*server)
	c := new(inferCall)
	if err := dec(c); err != nil {
		return nil, err
	}
	if icpt == nil {
		defer c.release()
		return s.serveInfer(ctx, c.err, &c.msg)
	}
	c.detach() // the interceptor may keep the message
	// The server's info and handler, made once (New): no allocation
	// per call but the message's, unless decoding failed, whose error the
	// handler must carry.
	if c.err == nil {
		return icpt(ctx, &c.msg, s.inferInfo, s.inferNext)
	}
	return icpt(ctx, &c.msg, s.inferInfo, func(ctx context.Context, _ any) (any, error) {
		return s.serveInfer(ctx, c.err, nil)
	})
}

// serveInfer answers a ModelInfer call: decodeErr, the error decoding its
// message met, or the Handler's answer to msg, as a gRPC status.
func (s *server) serveInfer(ctx context.Context, decodeErr error, msg *pb.ModelInferRequest) (_ any, err error) {
	defer s.recoverCall(ctx, modelInferMethod, &err)
	if decodeErr != nil {
		return nil, s.status(ctx, decodeErr)
	}
	ctx = extractTrace(ctx)
	resp, err := s.svc.Infer(ctx, incoming(ctx), msg)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return resp, nil
}

// modelStreamInfer is ModelStreamInfer for grpc-go, as the Handler serves
// it: answers in order, one at a time, a failed request answered with
// error_message.
func modelStreamInfer(srv any, stream grpc.ServerStream) (err error) {
	s := srv.(*server)
	ctx := stream.Context()
	defer s.recoverCall(ctx, modelStreamInferMethod, &err)
	ctx = extractTrace(ctx)
	in := incoming(ctx)
	for {
		c := new(inferCall)
		if err := stream.RecvMsg(c); err != nil {
			return ignoreEOF(err)
		}
		c.detach() // a stream interceptor may keep the message
		out := &pb.ModelStreamInferResponse{}
		if c.err != nil {
			out.ErrorMessage = c.err.Error()
		} else if msg, err := s.svc.Infer(ctx, in, &c.msg); err != nil {
			out.ErrorMessage = err.Error()
		} else {
			out.InferResponse = msg
		}
		if err := stream.SendMsg(out); err != nil {
			return err
		}
	}
}

// recoverCall turns a panic in an RPC into an Internal error for its
// client, logged with its stack: grpc-go, unlike net/http, lets a panic
// end the process.
func (s *server) recoverCall(ctx context.Context, method string, err *error) {
	if v := recover(); v != nil {
		slog.Error("grpcserver: panic serving "+method, "panic", v, "stack", string(debug.Stack()))
		*err = s.status(ctx, errPanic)
	}
}

var errPanic = serving.Errorf(serving.Internal, "grpcapi: internal error")

// status is an RPC's error as grpc-go answers it: a status with the code
// grpcapi.Code maps it to, and for ResourceExhausted and Unavailable the
// retry hint the Handler sends (serving.RetryAfterOf, else the
// Handler's WithRetryAfter), as a google.rpc.RetryInfo detail and
// retry-after trailer.
func (s *server) status(ctx context.Context, err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return status.Error(codes.Code(ce.Code()), ce.Message())
	}
	code := grpcapi.Code(err)
	st := status.New(codes.Code(code), err.Error())
	d := s.retryHint(code, err)
	if d <= 0 {
		return st.Err()
	}
	if withInfo, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); derr == nil {
		st = withInfo
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs(grpcapi.RetryAfterKey, seconds(d)))
	return st.Err()
}

func (s *server) retryHint(code connect.Code, err error) time.Duration {
	if code != connect.CodeResourceExhausted && code != connect.CodeUnavailable {
		return 0
	}
	if d := serving.RetryAfterOf(err); d > 0 {
		return d
	}
	return s.svc.RetryAfter
}

// seconds is a retry hint in whole seconds, rounded up, as Retry-After.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// adminRequest is the request the admin authoriser sees for a grpc-go
// call: its method as the path and its metadata as headers, as the
// Connect handler hands over the HTTP request a call arrived in, so one
// authoriser (admin.BearerToken reads "authorization") guards both.
func adminRequest(ctx context.Context) *http.Request {
	md, _ := metadata.FromIncomingContext(ctx)
	method, _ := grpc.Method(ctx)
	r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: method}, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: make(http.Header, len(md)), RequestURI: method}
	for k, vs := range md {
		if !strings.HasPrefix(k, ":") {
			r.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	r.Host = r.Header.Get("Authority")
	if a := md.Get(":authority"); len(a) > 0 {
		r.Host = a[0]
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.RemoteAddr = p.Addr.String()
	}
	return r.WithContext(ctx)
}

// extractTrace puts the W3C trace context of the call's metadata
// (traceparent) in ctx, as the Handler extracts it from headers.
func extractTrace(ctx context.Context) context.Context {
	p := otel.GetTextMapPropagator()
	if len(p.Fields()) == 0 {
		return ctx
	}
	return p.Extract(ctx, mdCarrier{ctx})
}

// mdCarrier reads a call's metadata for a propagator without copying it
// all (metadata.FromIncomingContext copies).
type mdCarrier struct{ ctx context.Context }

func (c mdCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, strings.ToLower(key)); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (mdCarrier) Set(string, string) {}

func (c mdCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

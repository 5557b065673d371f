package grpcapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // gzip requests, as the Connect handler takes them; bounded by MaxRecvMsgSize as they inflate
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// NewServer returns a grpc-go server of the models of m's Server: the
// same inference.GRPCInferenceService the Handler serves, over grpc-go's
// own HTTP/2 transport, for a port of its own (Triton's 8001), plus the
// standard grpc.health.v1.Health service, answering per model, and server
// reflection. Serve it on a listener; stop it with Shutdown (after
// closing WithDrain's channel), GracefulStop or Stop:
//
//	import "net"
//
//	gs := grpcapi.NewServer(oip.NewServer()) // or an *httpapi.Handler
//	ln, err := net.Listen("tcp", ":8001")
//	if err != nil {
//		log.Fatal(err)
//	}
//	go gs.Serve(ln)
//	defer gs.Stop()
//
// Every RPC is the Handler's, the same functions behind both servers; the
// Handler's options apply (limits, headers, output contents, retry hint),
// except WithFallback and WithHandlerOptions, which are Connect's;
// WithServerOptions passes grpc-go's. See the package doc, "Two servers".
func NewServer(m Models, opts ...Option) *grpc.Server {
	h := newHandler(m, opts)
	sopts := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(h.cfg.maxBytes)}, transportOptions()...)
	sopts = append(sopts, h.cfg.server...)
	// The bounded decoder of ModelInferRequest, as the Handler's (a
	// request costs what it sent: the package doc, "Cost"), last so that
	// no option replaces it: ModelInfer decodes into a message of its own
	// that only this codec knows.
	sopts = append(sopts, grpc.ForceServerCodecV2(nativeCodec{h.cfg.lim}))
	s := grpc.NewServer(sopts...)
	h.inferInfo = &grpc.UnaryServerInfo{Server: h, FullMethod: modelInferMethod}
	h.inferNext = func(ctx context.Context, req any) (any, error) {
		return h.serveInfer(ctx, nil, req.(*pb.ModelInferRequest))
	}
	s.RegisterService(&nativeDesc, h)
	healthpb.RegisterHealthServer(s, &health{h: h})
	reflection.Register(s)
	return s
}

// nativeDesc is the service for grpc-go, written by hand rather than
// generated: ModelInfer decodes into a message of its own, within the
// limits, and the other RPCs are the Handler's functions.
var nativeDesc = grpc.ServiceDesc{
	ServiceName: inferencepbconnect.GRPCInferenceServiceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "ModelInfer", Handler: modelInfer},
		unaryMethod("ServerLive", func(*Handler, context.Context, incoming, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
			return &pb.ServerLiveResponse{Live: true}, nil
		}),
		unaryMethod("ServerReady", (*Handler).serverReady),
		unaryMethod("ModelReady", (*Handler).modelReady),
		unaryMethod("ServerMetadata", (*Handler).serverMetadata),
		unaryMethod("ModelMetadata", (*Handler).modelMetadata),
		unaryMethod("ModelConfig", (*Handler).modelConfig),
		unaryMethod("ModelStatistics", (*Handler).modelStatistics),
		unaryMethod("RepositoryIndex", (*Handler).repositoryIndex),
		unaryMethod("RepositoryModelLoad", (*Handler).repositoryModelLoad),
		unaryMethod("RepositoryModelUnload", (*Handler).repositoryModelUnload),
		unaryMethod("SystemSharedMemoryStatus", (*Handler).systemSharedMemoryStatus),
		unaryMethod("SystemSharedMemoryRegister", func(*Handler, context.Context, incoming, *pb.SystemSharedMemoryRegisterRequest) (*pb.SystemSharedMemoryRegisterResponse, error) {
			return nil, errSharedMemory
		}),
		unaryMethod("SystemSharedMemoryUnregister", func(_ *Handler, _ context.Context, _ incoming, req *pb.SystemSharedMemoryUnregisterRequest) (*pb.SystemSharedMemoryUnregisterResponse, error) {
			return &pb.SystemSharedMemoryUnregisterResponse{}, unregister(req.GetName())
		}),
		unaryMethod("CudaSharedMemoryStatus", (*Handler).cudaSharedMemoryStatus),
		unaryMethod("CudaSharedMemoryRegister", func(*Handler, context.Context, incoming, *pb.CudaSharedMemoryRegisterRequest) (*pb.CudaSharedMemoryRegisterResponse, error) {
			return nil, errSharedMemory
		}),
		unaryMethod("CudaSharedMemoryUnregister", func(_ *Handler, _ context.Context, _ incoming, req *pb.CudaSharedMemoryUnregisterRequest) (*pb.CudaSharedMemoryUnregisterResponse, error) {
			return &pb.CudaSharedMemoryUnregisterResponse{}, unregister(req.GetName())
		}),
		unaryMethod("TraceSetting", func(*Handler, context.Context, incoming, *pb.TraceSettingRequest) (*pb.TraceSettingResponse, error) {
			return nil, errTrace
		}),
		unaryMethod("LogSettings", func(*Handler, context.Context, incoming, *pb.LogSettingsRequest) (*pb.LogSettingsResponse, error) {
			return nil, errLog
		}),
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "ModelStreamInfer", Handler: modelStreamInfer, ServerStreams: true, ClientStreams: true},
	},
	Metadata: "grpc_predict_v2.proto",
}

// unaryMethod serves one of the Handler's RPCs through grpc-go: decode,
// the interceptors, the RPC, its error as a gRPC status.
func unaryMethod[Q, R any](name string, f func(*Handler, context.Context, incoming, *Q) (*R, error)) grpc.MethodDesc {
	full := "/" + inferencepbconnect.GRPCInferenceServiceName + "/" + name
	return grpc.MethodDesc{MethodName: name, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		h := srv.(*Handler)
		in := new(Q)
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (_ any, err error) {
			defer h.recoverCall(ctx, full, &err)
			out, err := f(h, ctx, incoming{ctx: ctx}, req.(*Q))
			if err != nil {
				return nil, h.status(ctx, err)
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
	h := srv.(*Handler)
	c := new(inferCall)
	if err := dec(c); err != nil {
		return nil, err
	}
	if icpt == nil {
		defer c.release()
		return h.serveInfer(ctx, c.err, &c.msg)
	}
	c.detach() // the interceptor may keep the message
	// The server's info and handler, made once (NewServer): no allocation
	// per call but the message's, unless decoding failed, whose error the
	// handler must carry.
	if c.err == nil {
		return icpt(ctx, &c.msg, h.inferInfo, h.inferNext)
	}
	return icpt(ctx, &c.msg, h.inferInfo, func(ctx context.Context, _ any) (any, error) {
		return h.serveInfer(ctx, c.err, nil)
	})
}

// serveInfer answers a ModelInfer call: decodeErr, the error decoding its
// message met, or the Handler's answer to msg, as a gRPC status.
func (h *Handler) serveInfer(ctx context.Context, decodeErr error, msg *pb.ModelInferRequest) (_ any, err error) {
	defer h.recoverCall(ctx, modelInferMethod, &err)
	if decodeErr != nil {
		return nil, h.status(ctx, decodeErr)
	}
	ctx = extractTrace(ctx)
	resp, err := h.infer(ctx, incoming{ctx: ctx}, msg)
	if err != nil {
		return nil, h.status(ctx, err)
	}
	return resp, nil
}

// modelStreamInfer is ModelStreamInfer for grpc-go, as the Handler serves
// it: answers in order, one at a time, a failed request answered with
// error_message.
func modelStreamInfer(srv any, stream grpc.ServerStream) (err error) {
	h := srv.(*Handler)
	ctx := stream.Context()
	defer h.recoverCall(ctx, modelStreamInferMethod, &err)
	ctx = extractTrace(ctx)
	in := incoming{ctx: ctx}
	for {
		c := new(inferCall)
		if err := stream.RecvMsg(c); err != nil {
			return ignoreEOF(err)
		}
		c.detach() // a stream interceptor may keep the message
		out := &pb.ModelStreamInferResponse{}
		if c.err != nil {
			out.ErrorMessage = c.err.Error()
		} else if msg, err := h.infer(ctx, in, &c.msg); err != nil {
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
func (h *Handler) recoverCall(ctx context.Context, method string, err *error) {
	if v := recover(); v != nil {
		slog.Error("grpcapi: panic serving "+method, "panic", v, "stack", string(debug.Stack()))
		*err = h.status(ctx, errPanic)
	}
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

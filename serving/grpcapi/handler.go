package grpcapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"connectrpc.com/connect"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// Models is where a Handler finds the models it serves. *httpapi.Handler
// implements it, so models registered once are served over REST and gRPC
// alike, with the same version resolution.
type Models interface {
	// Lookup finds the Predictor that answers model name at version ("" =
	// the default) and the version it answers as; unknown names and
	// versions are NotFound errors.
	Lookup(name, version string) (serving.Predictor, string, error)
	// ModelReady reports whether model name at version can serve.
	ModelReady(name, version string) (bool, error)
	// ModelMetadata returns the metadata of model name at version and the
	// versions the model has.
	ModelMetadata(name, version string) (serving.Metadata, []string, error)
	// Ready reports whether every model is ready.
	Ready() bool
}

// Path is the URL path prefix of the service's procedures; mount a Handler
// there in a mux that also serves other routes.
const Path = "/" + inferencepbconnect.GRPCInferenceServiceName + "/"

// Handler serves the Open Inference Protocol's inference.GRPCInferenceService
// over gRPC, gRPC-Web and Connect as an http.Handler. Build it with New; it
// is safe for concurrent use and holds no goroutines of its own.
type Handler struct {
	cfg    config
	models Models
	rpc    http.Handler
}

var (
	_ http.Handler                                   = (*Handler)(nil)
	_ inferencepbconnect.GRPCInferenceServiceHandler = (*service)(nil)
)

// New returns a Handler serving the models of m.
func New(m Models, opts ...Option) *Handler {
	h := &Handler{cfg: defaultConfig(), models: m}
	for _, o := range opts {
		o.apply(&h.cfg)
	}
	copts := append([]connect.HandlerOption{
		connect.WithReadMaxBytes(h.cfg.maxBytes),
		// Bounded decoders and decompression: see the package doc, "Cost".
		connect.WithCodec(protoCodec{h.cfg.lim}),
		connect.WithCodec(jsonCodec{"json", h.cfg.lim}),
		connect.WithCodec(jsonCodec{"json; charset=utf-8", h.cfg.lim}),
		connect.WithCompression(compressionGzip, newBoundedGzip(int64(h.cfg.maxBytes)), newGzipWriter),
		// A panic below becomes an Internal error for this call instead of
		// a reset stream; it is logged with its stack, as net/http logs the
		// panics of REST handlers, and never shown to the client.
		connect.WithRecover(func(_ context.Context, spec connect.Spec, _ http.Header, v any) error {
			slog.Error("grpcapi: panic serving "+spec.Procedure, "panic", v, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errPanic)
		}),
	}, h.cfg.connect...)
	_, h.rpc = inferencepbconnect.NewGRPCInferenceServiceHandler(&service{h}, copts...)
	return h
}

var errPanic = serving.Errorf(serving.Internal, "grpcapi: internal error")

// ServeHTTP implements http.Handler: the service's procedures, and every
// other path to the fallback (WithFallback) or a 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.fallback != nil && !strings.HasPrefix(r.URL.Path, Path) {
		h.cfg.fallback.ServeHTTP(w, r)
		return
	}
	h.rpc.ServeHTTP(w, r)
}

// Protocols returns the protocols a plaintext http.Server needs to serve
// gRPC beside HTTP/1.1: HTTP/2 without TLS (h2c, with prior knowledge, as
// gRPC clients connect) and, for TLS servers, HTTP/2 over TLS.
//
//	srv := &http.Server{Handler: h, Protocols: grpcapi.Protocols()}
func Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// service implements the generated interface; its methods are not part of
// Handler's API.
type service struct{ h *Handler }

func (s *service) ServerLive(context.Context, *connect.Request[pb.ServerLiveRequest]) (*connect.Response[pb.ServerLiveResponse], error) {
	return connect.NewResponse(&pb.ServerLiveResponse{Live: true}), nil
}

func (s *service) ServerReady(context.Context, *connect.Request[pb.ServerReadyRequest]) (*connect.Response[pb.ServerReadyResponse], error) {
	return connect.NewResponse(&pb.ServerReadyResponse{Ready: s.h.models.Ready()}), nil
}

// ModelReady answers ready true or false for a known model, and NotFound for
// an unknown model or version, as GET /v2/models/{name}/ready answers 404.
func (s *service) ModelReady(_ context.Context, req *connect.Request[pb.ModelReadyRequest]) (*connect.Response[pb.ModelReadyResponse], error) {
	ready, err := s.h.models.ModelReady(req.Msg.GetName(), req.Msg.GetVersion())
	if err != nil {
		return nil, toError(err, s.h.cfg.retryAfter)
	}
	return connect.NewResponse(&pb.ModelReadyResponse{Ready: ready}), nil
}

// extensions are the protocol extensions ServerMetadata lists: Triton's
// classification, and request and response parameters. (Binary tensor data
// is a REST extension; gRPC has raw contents built in.)
var extensions = []string{"classification", "parameters"}

func (s *service) ServerMetadata(context.Context, *connect.Request[pb.ServerMetadataRequest]) (*connect.Response[pb.ServerMetadataResponse], error) {
	return connect.NewResponse(&pb.ServerMetadataResponse{Name: s.h.cfg.serverName, Version: s.h.cfg.serverVersion, Extensions: extensions}), nil
}

func (s *service) ModelMetadata(_ context.Context, req *connect.Request[pb.ModelMetadataRequest]) (*connect.Response[pb.ModelMetadataResponse], error) {
	name := req.Msg.GetName()
	md, versions, err := s.h.models.ModelMetadata(name, req.Msg.GetVersion())
	if err != nil {
		return nil, toError(err, s.h.cfg.retryAfter)
	}
	return connect.NewResponse(&pb.ModelMetadataResponse{
		Name:     name,
		Versions: versions,
		Platform: md.Platform,
		Inputs:   specs(md.Inputs),
		Outputs:  specs(md.Outputs),
	}), nil
}

func specs(in []serving.TensorSpec) []*pb.ModelMetadataResponse_TensorMetadata {
	out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(in))
	for i, s := range in {
		out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: s.Name, Datatype: s.DataType.String(), Shape: s.Shape}
	}
	return out
}

package grpcapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"connectrpc.com/connect"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/oip"
)

// Models is where a Handler finds the models it serves: an *oip.Server, or
// anything serving one, such as an *httpapi.Handler (its Server). Models
// registered once are so served over REST and gRPC alike, with the same
// version resolution and the same statistics.
type Models interface {
	Server() *oip.Server
}

// Path is the URL path prefix of the service's procedures; mount a Handler
// there in a mux that also serves other routes.
const Path = "/" + inferencepbconnect.GRPCInferenceServiceName + "/"

// Handler serves the Open Inference Protocol's inference.GRPCInferenceService
// over gRPC, gRPC-Web and Connect as an http.Handler. Build it with New; it
// is safe for concurrent use and holds no goroutines of its own.
type Handler struct {
	cfg config
	srv *oip.Server
	rpc http.Handler
	// keyMD and versionMD are cfg's metadata keys as gRPC spells them
	// (lower case), for calls that arrive through grpc-go.
	keyMD, versionMD string
}

var (
	_ http.Handler                                   = (*Handler)(nil)
	_ inferencepbconnect.GRPCInferenceServiceHandler = (*service)(nil)
)

// New returns a Handler serving the models of m's Server.
func New(m Models, opts ...Option) *Handler {
	h := newHandler(m, opts)
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

// newHandler is what both servers share: the configuration and the RPCs.
func newHandler(m Models, opts []Option) *Handler {
	h := &Handler{cfg: defaultConfig(), srv: m.Server()}
	for _, o := range opts {
		o.apply(&h.cfg)
	}
	h.keyMD, h.versionMD = strings.ToLower(h.cfg.keyHeader), strings.ToLower(h.cfg.versionHeader)
	return h
}

var errPanic = serving.Errorf(serving.Internal, "grpcapi: internal error")

// Server returns the Server whose models h serves.
func (h *Handler) Server() *oip.Server { return h.srv }

// ServeHTTP implements http.Handler: the service's procedures, and every
// other path to the fallback (WithFallback) or a 404. A repository
// procedure carries its *http.Request in its context, for the admin
// authoriser, which sees the call as it arrived.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, Path) {
		if h.cfg.fallback != nil {
			h.cfg.fallback.ServeHTTP(w, r)
			return
		}
	} else if strings.HasPrefix(r.URL.Path[len(Path):], "Repository") {
		r = r.WithContext(context.WithValue(r.Context(), adminKey{}, r))
	}
	h.rpc.ServeHTTP(w, r)
}

type adminKey struct{}

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

//go:build !servekit_nogrpc

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
	"github.com/servekit/servekit/serving/oip"
)

// apis names what the HTTP port serves, in the startup line.
const apis = "REST and gRPC"

// grpcBuilt: this binary has gRPC (--grpc-port means something).
const grpcBuilt = true

// protocols are the HTTP port's: plaintext HTTP/2 (h2c) beside HTTP/1,
// which gRPC clients need.
func protocols() *http.Protocols { return grpcapi.Protocols() }

// withGRPC serves the Open Inference Protocol's gRPC service for the models
// of srv on the HTTP port beside everything else (rest: the REST API and
// maybe /metrics), through connect-go, with the REST limits but its own
// message size (--grpc-max-message, grpc-go's 4 MiB).
func withGRPC(srv *oip.Server, rest http.Handler, o *options) http.Handler {
	return grpcapi.New(srv, append(grpcOptions(o), grpcapi.WithFallback(rest))...)
}

func grpcOptions(o *options) []grpcapi.Option {
	return []grpcapi.Option{
		grpcapi.WithMaxMessageBytes(o.maxMessage),
		grpcapi.WithMaxElements(o.maxElements),
		grpcapi.WithMaxTimeout(o.maxTimeout),
	}
}

// listenGRPC serves --grpc-port, Triton's 8001, with grpc-go's own server
// (grpcserver.New): the same RPCs as the HTTP port's, plus
// grpc.health.v1 (per model) and server reflection. On SIGTERM its health
// service answers NOT_SERVING from the start of --drain-delay, then
// GracefulStop lets the calls in flight finish within
// --exit-timeout-secs; past that, Stop ends them. The connect handler on
// the HTTP port stays for browsers (gRPC-Web) and single-port platforms.
func listenGRPC(addr string, srv *oip.Server, o *options, log *slog.Logger) (*listening, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	drained := make(chan struct{})
	var once sync.Once
	drain := func() { once.Do(func() { close(drained) }) }
	var answered atomic.Int64
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		defer answered.Add(1)
		return h(ctx, req)
	}
	s := grpcserver.New(srv, append(grpcOptions(o),
		grpcserver.WithDrain(drained),
		grpcserver.WithServerOptions(grpc.ChainUnaryInterceptor(count)))...)
	return &listening{
		ln: ln, addr: ln.Addr().String(),
		serve:  s.Serve,
		drain:  drain,
		refuse: drain,
		shutdown: func(ctx context.Context) error {
			drain() // health Watch calls end, so they do not hold the wait
			return grpcserver.Shutdown(ctx, s)
		},
		close:    s.Stop,
		answered: answered.Load,
	}, nil
}

// grpcurlLine is the gRPC twin of curlLine: the same request with
// grpcurl. grpc-go's port answers server reflection; the HTTP port's
// connect handler does not, so there grpcurl reads the committed .proto
// (run from the repository root).
func grpcurlLine(addr, model string, reflection bool) string {
	body := fmt.Sprintf(`{"model_name":"%s","inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"contents":{"fp32_contents":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}}]}`, model)
	proto := "-import-path serving/grpcapi/proto -import-path serving/modelconfigpb -proto grpc_predict_v2.proto "
	if reflection {
		proto = ""
	}
	return fmt.Sprintf(`grpcurl -plaintext %s-d '%s' %s inference.GRPCInferenceService/ModelInfer`, proto, body, loopback(addr))
}

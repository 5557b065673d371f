//go:build !servekit_nogrpc

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"google.golang.org/grpc"

	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/oip"
)

// apis names what the port serves, in the startup line.
const apis = "REST and gRPC"

// protocols are the server's: plaintext HTTP/2 (h2c) beside HTTP/1, which
// gRPC clients need.
func protocols() *http.Protocols { return grpcapi.Protocols() }

// gRPC is served twice, by one set of RPCs over one oip.Server: by the
// Connect handler on the REST port (withGRPC), which browsers (gRPC-Web)
// and single-port deployments use, and, with -grpc-addr, by grpc-go's own
// server on a port of its own (Triton's 8001), the fast path, which also
// speaks the standard health service (per model) and server reflection.

// grpcOptions are what both take from the flags: the REST limits, and a
// message size of their own (-grpc-max-message, grpc-go's 4 MiB: a message
// is decoded whole, a REST body too, but gRPC clients send large tensors
// in several messages or raw).
func grpcOptions(o *options) []grpcapi.Option {
	return []grpcapi.Option{
		grpcapi.WithMaxMessageBytes(o.maxMessage),
		grpcapi.WithMaxElements(o.maxElements),
		grpcapi.WithMaxTimeout(o.maxTimeout),
	}
}

// withGRPC serves the Open Inference Protocol's gRPC service for the models
// of srv on the same port as everything else (rest: the REST API and
// /metrics). The server must speak plaintext HTTP/2 too: see
// grpcapi.Protocols.
func withGRPC(srv *oip.Server, rest http.Handler, o *options) http.Handler {
	return grpcapi.New(srv, append(grpcOptions(o), grpcapi.WithFallback(rest))...)
}

// grpcPort is grpc-go's server on -grpc-addr.
type grpcPort struct {
	s     *grpc.Server
	addr  string
	drain chan struct{} // closed when the process starts to drain
	done  chan error    // Serve's return
}

// serveGRPC starts grpc-go's server of srv's models on o.grpcAddr; nil
// when there is none to start.
func serveGRPC(srv *oip.Server, o *options) (*grpcPort, error) {
	if o.grpcAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", o.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("-grpc-addr: %w", err)
	}
	p := &grpcPort{addr: ln.Addr().String(), drain: make(chan struct{}), done: make(chan error, 1)}
	p.s = grpcapi.NewServer(srv, append(grpcOptions(o), grpcapi.WithDrain(p.drain))...)
	go func() { p.done <- p.s.Serve(ln) }()
	return p, nil
}

// failed is Serve's return, if it ends before the drain (nil channel: never).
func (p *grpcPort) failed() <-chan error {
	if p == nil {
		return nil
	}
	return p.done
}

// close stops the server at once (run's other server failed).
func (p *grpcPort) close() {
	if p != nil {
		p.s.Stop()
	}
}

// beginDrain makes health answer NOT_SERVING while the server still serves.
func (p *grpcPort) beginDrain() {
	if p != nil {
		close(p.drain)
	}
}

// stop drains the server as http.Server.Shutdown does, until ctx ends.
func (p *grpcPort) stop(ctx context.Context, log *slog.Logger) error {
	if p == nil {
		return nil
	}
	err := grpcapi.Shutdown(ctx, p.s)
	if serr := <-p.done; serr != nil && !errors.Is(serr, grpc.ErrServerStopped) {
		err = errors.Join(err, serr)
	}
	log.Info("grpc server stopped", "addr", p.addr, "error", err)
	return err
}

// grpcurlLine is the gRPC twin of curlLine: the same request with grpcurl,
// which reads the service from the committed .proto (run from the
// repository root).
func grpcurlLine(addr, model string) string {
	return fmt.Sprintf(`grpcurl -plaintext -import-path serving/grpcapi/proto -import-path serving/modelconfigpb -proto grpc_predict_v2.proto -d '%s' %s inference.GRPCInferenceService/ModelInfer`,
		grpcurlBody(model), dialable(addr))
}

// grpcurlNativeLine is grpcurlLine for grpc-go's port, which answers
// server reflection: no .proto needed.
func grpcurlNativeLine(addr, model string) string {
	return fmt.Sprintf(`grpcurl -plaintext -d '%s' %s inference.GRPCInferenceService/ModelInfer`, grpcurlBody(model), dialable(addr))
}

func grpcurlBody(model string) string {
	return fmt.Sprintf(`{"model_name":"%s","inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"contents":{"fp32_contents":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}}]}`, model)
}

// dialable is a listener's address as a client dials it.
func dialable(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

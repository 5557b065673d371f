//go:build !servekit_nogrpc

package main

import (
	"fmt"
	"net"
	"net/http"

	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/oip"
)

// apis names what the port serves, in the startup line.
const apis = "REST and gRPC"

// protocols are the server's: plaintext HTTP/2 (h2c) beside HTTP/1, which
// gRPC clients need.
func protocols() *http.Protocols { return grpcapi.Protocols() }

// withGRPC serves the Open Inference Protocol's gRPC service for the models
// of srv on the same port as everything else (rest: the REST API and
// /metrics), with the REST limits but its own message size (-grpc-max-message,
// grpc-go's 4 MiB: a message is decoded whole, a REST body too, but gRPC
// clients send large tensors in several messages or raw). The server must
// speak plaintext HTTP/2 too: see grpcapi.Protocols.
func withGRPC(srv *oip.Server, rest http.Handler, o *options) http.Handler {
	return grpcapi.New(srv,
		grpcapi.WithFallback(rest),
		grpcapi.WithMaxMessageBytes(o.maxMessage),
		grpcapi.WithMaxElements(o.maxElements),
		grpcapi.WithMaxTimeout(o.maxTimeout),
	)
}

// grpcurlLine is the gRPC twin of curlLine: the same request with grpcurl,
// which reads the service from the committed .proto (run from the
// repository root).
func grpcurlLine(addr, model string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf(`grpcurl -plaintext -import-path serving/grpcapi/proto -import-path serving/modelconfigpb -proto grpc_predict_v2.proto -d '{"model_name":"%s","inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"contents":{"fp32_contents":[0.5,-1.2,0.3,2.1,-0.7,1.5,0.0,-0.4]}}]}' %s inference.GRPCInferenceService/ModelInfer`,
		model, net.JoinHostPort(host, port))
}

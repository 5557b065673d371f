//go:build servekit_nogrpc

package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/servekit/servekit/serving/oip"
)

// Built with -tags servekit_nogrpc: REST only, without serving/grpcapi,
// connect-go and the generated protocol code (about 0.5 MB less; README
// "At the edge"). --grpc-port is ignored, as --allow-grpc=false would.

const apis = "REST only: built with -tags servekit_nogrpc"

func protocols() *http.Protocols { return nil } // http.Server's default

const grpcBuilt = false

// listenGRPC is never called: grpcBuilt is false.
func listenGRPC(addr string, srv *oip.Server, o *options, log *slog.Logger) (*listening, error) {
	return nil, errors.New("built without gRPC")
}

func withGRPC(srv *oip.Server, rest http.Handler, o *options) http.Handler { return rest }

func grpcurlLine(addr, model string, reflection bool) string { return "(no gRPC in this build)" }

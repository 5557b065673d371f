//go:build servekit_nogrpc

package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/servekit/servekit/serving/oip"
)

// Built with -tags servekit_nogrpc: REST only, without serving/grpcapi,
// connect-go and the generated protocol code (about 0.5 MB less; README
// "At the edge").

const apis = "REST only: built with -tags servekit_nogrpc"

func protocols() *http.Protocols { return nil } // http.Server's default

func withGRPC(srv *oip.Server, rest http.Handler, o *options) http.Handler { return rest }

func grpcurlLine(addr, model string) string { return "(no gRPC in this build)" }

// grpcPort is grpc.go's: without gRPC there is none (serveGRPC refuses
// -grpc-addr), and its methods do nothing on the nil one.
type grpcPort struct{ addr string }

func serveGRPC(_ *oip.Server, o *options) (*grpcPort, error) {
	if o.grpcAddr != "" {
		return nil, errors.New("-grpc-addr: this build has no gRPC (built with -tags servekit_nogrpc)")
	}
	return nil, nil
}

func (*grpcPort) failed() <-chan error                     { return nil }
func (*grpcPort) close()                                   {}
func (*grpcPort) beginDrain()                              {}
func (*grpcPort) stop(context.Context, *slog.Logger) error { return nil }

func grpcurlNativeLine(addr, model string) string { return grpcurlLine(addr, model) }

//go:build servekit_nogrpc

package main

import (
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

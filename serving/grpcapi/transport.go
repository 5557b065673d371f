package grpcapi

import (
	"errors"
	"io"

	"google.golang.org/grpc"
)

// The HTTP/2 settings of grpc-go's server (NewServer), for many concurrent
// calls on one connection, as gRPC clients send them (one connection per
// server is grpc-go's and Triton's clients' habit).
const (
	// maxStreams bounds the calls in flight on one connection. grpc-go's
	// default is unbounded; a client past the bound waits for a stream to
	// end (its calls queue, none fail), so the server's memory is bounded
	// by connections × streams × window rather than by what clients open.
	maxStreams = 1024
)

// transportOptions are NewServer's HTTP/2 settings; maxBytes is the
// largest message.
func transportOptions(maxBytes int) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(maxStreams),
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

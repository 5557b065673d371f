package grpcapi

import (
	"context"
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

// Shutdown stops s as http.Server.Shutdown stops an HTTP server: it
// stops accepting, sends GOAWAY and waits for the calls in flight
// (GracefulStop) until ctx is done, then closes what is left (Stop) and
// returns ctx's error. Close WithDrain's channel first, so that health
// Watch calls end rather than hold the wait.
func Shutdown(ctx context.Context, s *grpc.Server) error {
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		s.Stop()
		<-stopped
		return ctx.Err()
	}
}

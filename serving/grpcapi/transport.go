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
//
// Streams are bounded: grpc-go's default is unbounded; past maxStreams a
// client's calls queue on its side (none fail), so the server's memory is
// bounded by connections × streams × message size rather than by what
// clients open.
//
// Flow-control windows are left to grpc-go, which starts at 64 KiB and
// grows both windows from the bandwidth-delay product it measures (BDP
// pings, up to 16 MiB). Static windows switch that estimation off;
// measured against 1 MiB per stream and 16 MiB per connection with 64
// callers on one connection (BenchmarkNativeWindows, 1, 256 and 16,384
// rows: 36 B to 512 KiB messages), they made no difference beyond the
// noise on loopback, where the server is CPU-bound, and on a real network
// the estimate follows the path's bandwidth and latency where a constant
// cannot. WithServerOptions(grpc.InitialWindowSize(...),
// grpc.InitialConnWindowSize(...)) sets them for a network known better.
//
// Stream workers (grpc.NumStreamWorkers), which reuse goroutines instead of
// starting one per call, made no measurable difference either (bench/grpc.sh,
// one server core, 64 clients) and are left off.
const maxStreams = 1024

// transportOptions are NewServer's HTTP/2 settings.
func transportOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxConcurrentStreams(maxStreams)}
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

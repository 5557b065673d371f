package grpcserver

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
)

// The HTTP/2 settings of grpc-go's server (New), for many concurrent
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
// Calls run on streamWorkers long-lived goroutines (grpc.NumStreamWorkers)
// rather than on a goroutine started for each: a fresh goroutine's stack
// grows twice in every call (under processRPC and grpc-go's read of the
// message), and each growth copies the stack, walking its frames. That
// was 10-12% of the server's CPU on the demo model (runtime.copystack in
// a profile); a worker keeps its grown stack. When every worker is busy
// grpc-go starts a goroutine for the call as before, so the count bounds
// nothing. Measured on one server core (bench/README.md, "Closing the
// 1-row gap"), server CPU per call with 64 workers against none: 27.6 →
// 24.1 µs at 64 callers on one connection, 38.1 → 34.2 at 8, 27.9 → 27.7
// at 256. 16 workers saved less at 64 callers (1.3 µs); 256 cost 1-4 µs
// more than none, since grpc-go hands calls to idle workers in turn, each
// then runs on the stack idle longest, out of the caches, and the
// collector scans every stack. A bigger server can ask for more with
// WithServerOptions(grpc.NumStreamWorkers(n)).
const (
	maxStreams    = 1024
	streamWorkers = 64
)

// transportOptions are New's HTTP/2 settings.
func transportOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxConcurrentStreams(maxStreams), grpc.NumStreamWorkers(streamWorkers)}
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

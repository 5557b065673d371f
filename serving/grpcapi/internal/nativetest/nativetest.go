package nativetest

import (
	"net"
	"testing"

	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
)

// Serve starts grpc-go's server of m's models on a loopback port and
// returns its host:port; the test's cleanup stops it.
func Serve(t testing.TB, m grpcapi.Models, opts ...grpcapi.Option) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpcserver.New(m, opts...)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

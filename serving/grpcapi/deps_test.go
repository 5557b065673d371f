package grpcapi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoGRPCGo: a program that imports grpcapi alone (the Connect handler)
// links none of grpc-go, which only grpcserver brings in (10.3 against
// 15.6 MB stripped: the package doc). Any import of google.golang.org/grpc
// that creeps back into grpcapi, or into what it imports, fails here.
func TestNoGRPCGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/servekit/servekit/serving/grpcapi").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
	}
	for _, p := range deps {
		if p == "google.golang.org/grpc" || strings.HasPrefix(p, "google.golang.org/grpc/") {
			t.Errorf("grpcapi links %s; grpc-go belongs to grpcserver", p)
		}
	}
}

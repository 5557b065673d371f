// Package orttest is the one place tests decide what a missing ONNX Runtime
// means: a skip on a developer's machine without it, a failure where
// SERVEKIT_REQUIRE_ORT=1 (CI), so a broken install can never pass as green.
package orttest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
)

// Required reports whether a missing ONNX Runtime must fail tests.
func Required() bool { return os.Getenv("SERVEKIT_REQUIRE_ORT") == "1" }

// Missing skips t, or fails it when ONNX Runtime is required, with why.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("ONNX Runtime required (SERVEKIT_REQUIRE_ORT=1): %s", why)
	}
	t.Skipf("ONNX Runtime not available: %s; run scripts/install-onnxruntime.sh", why)
}

// Require loads ONNX Runtime into this process, or skips / fails t.
func Require(t testing.TB) {
	t.Helper()
	if _, err := onnx.InitRuntime(""); err != nil {
		Missing(t, err.Error())
	}
}

// Library returns the path of the ONNX Runtime library, for tests that
// start a child process: $ONNXRUNTIME_LIB, else the project's
// third_party/onnxruntime/ found upward from the working directory.
func Library(t testing.TB) string {
	t.Helper()
	if lib := os.Getenv(onnx.EnvLibraryPath); lib != "" {
		if _, err := os.Stat(lib); err != nil {
			Missing(t, err.Error())
		}
		return lib
	}
	dir, err := os.Getwd()
	for err == nil {
		lib := filepath.Join(dir, "third_party", "onnxruntime", "libonnxruntime.so.1")
		if _, serr := os.Stat(lib); serr == nil {
			return lib
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	Missing(t, "no "+onnx.EnvLibraryPath+" and no third_party/onnxruntime/libonnxruntime.so.1 above the working directory")
	return ""
}

// Fraud loads the demo fraud MLP (built in memory, the bytes of
// testdata/models/fraud.onnx) and closes it when t ends.
func Fraud(t testing.TB, opts ...onnx.Option) *onnx.Model {
	t.Helper()
	Require(t)
	b, err := onnxbuild.FraudMLP()
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.LoadBytes("fraud", b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

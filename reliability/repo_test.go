package reliability_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/servekit/servekit/internal/atomicfile"
	"github.com/servekit/servekit/internal/onnxbuild"
)

// fraudVariant is the demo model with one bias moved, so that its answers
// tell the variants apart.
func fraudVariant(t *testing.T, bias float32) []byte {
	t.Helper()
	b, err := onnxbuild.FraudVariant(bias)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putFile replaces path by rename, as a deployment should, so a poll never
// sees half a file.
func putFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

// fraudRepo lays out a model repository with versions of the fraud model,
// all of them served (the default policy serves only the latest).
func fraudRepo(t *testing.T, versions ...string) string {
	t.Helper()
	dir := t.TempDir()
	putFile(t, filepath.Join(dir, "fraud", "config.json"), []byte(`{"version_policy": {"all": {}}}`))
	for i, v := range versions {
		putFile(t, filepath.Join(dir, "fraud", v, "model.onnx"), fraudVariant(t, float32(i)))
	}
	return dir
}

// countLines counts the server's log lines containing all of parts.
func countLines(out string, parts ...string) int {
	n := 0
	for line := range strings.Lines(out) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

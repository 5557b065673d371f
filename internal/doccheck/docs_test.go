package doccheck_test

import (
	"path/filepath"
	"testing"

	"github.com/servekit/servekit/internal/doccheck"
)

// std and third are the packages outside servekit that snippets use
// without importing them.
var (
	std = map[string]string{
		"context":  "context",
		"errors":   "errors",
		"fmt":      "fmt",
		"http":     "net/http",
		"httptest": "net/http/httptest",
		"io":       "io",
		"json":     "encoding/json",
		"log":      "log",
		"os":       "os",
		"slog":     "log/slog",
		"strings":  "strings",
		"testing":  "testing",
		"time":     "time",
	}
	third = map[string]string{
		"beam":      "github.com/apache/beam/sdks/v2/go/pkg/beam",
		"connect":   "connectrpc.com/connect",
		"protojson": "google.golang.org/protobuf/encoding/protojson",
		"prototext": "google.golang.org/protobuf/encoding/prototext",
		"redis":     "github.com/redis/go-redis/v9",
	}
)

// vars are the free variables snippets take from the prose around them,
// with the type the prose gives them. A snippet that uses a name not here
// and does not declare it fails.
var vars = map[string]string{
	// Models and the chains around them.
	"model":   "serving.Predictor",
	"modelV2": "serving.Predictor",
	"blue":    "serving.Predictor", // a rollout's two versions
	"green":   "serving.Predictor",
	"p":       "serving.Predictor", // a composed chain
	"req":     "*serving.Request",
	"x":       "serving.Tensor",
	"md":      "serving.Metadata",
	// The values a package doc built in an earlier snippet.
	"c":      "*cache.Cache",
	"h":      "*httpapi.Handler",
	"r":      "*rollout.Router",
	"plan":   "rollout.Plan",
	"mon":    "*drift.Monitor",
	"hook":   "*webhook.Sender",
	"shadow": "*rollout.Shadow",
	"qm":     "*quality.Monitor",
	"repo":   "*repository.Repository",
	// What the reader's program has.
	"ctx":            "context.Context",
	"t":              "*testing.T",
	"mux":            "*http.ServeMux",
	"srv":            "*http.Server",
	"existing":       "http.Handler",
	"h2cClient":      "*http.Client",
	"redisClient":    "redis.UniversalClient",
	"hmacKey":        "[]byte",
	"load":           "repository.LoadFunc",
	"myMiddleware":   "serving.Middleware",
	"notify":         "func(quality.Alert)",
	"featureColumns": "[]string",
	"configPbtxt":    "[]byte",
	"configJSON":     "[]byte",
	// A Beam pipeline's.
	"s":     "beam.Scope",
	"rows":  "beam.PCollection",
	"lines": "beam.PCollection",
	"toRow": "func(string) scoring.Row",
}

func TestDocs(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := doccheck.Modules(root)
	if err != nil {
		t.Fatal(err)
	}
	imports, err := doccheck.PackageNames(mods)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]string{std, third} {
		for name, path := range m {
			imports[name] = path
		}
	}
	snips, err := doccheck.Documents(root)
	if err != nil {
		t.Fatal(err)
	}
	c := &doccheck.Checker{Root: root, Modules: mods, Imports: imports, Vars: vars}
	// -v lists every block and what it was taken for.
	logf := func(format string, args ...any) {
		if testing.Verbose() {
			t.Logf(format, args...)
		}
	}
	checked := map[string]int{}
	for _, s := range snips {
		switch {
		case !s.IsGo():
			logf("%s: not Go (%q)", s, s.Lang)
		case s.Skip != "":
			logf("%s: skipped: %s", s, s.Skip)
		default:
			kind, err := c.Check(s)
			if err != nil {
				t.Errorf("%s: a Go snippet that does not compile (%v):\n%v", s, kind, err)
			} else {
				logf("%s: %v", s, kind)
			}
			checked[s.File]++
		}
	}
	// The documents that must show Go: if extraction stopped finding
	// their snippets, this test would pass without checking anything.
	for _, f := range []string{"README.md", "doc.go", "serving/doc.go", "beam/README.md"} {
		if checked[f] == 0 {
			t.Errorf("%s: no Go snippet found", f)
		}
	}
}

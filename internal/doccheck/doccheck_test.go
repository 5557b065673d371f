package doccheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	md := "# Title\n" + // 1
		"\n" + // 2
		"```go\n" + // 3
		"p := serving.Chain(c.Middleware())(model)\n" + // 4
		"```\n" + // 5
		"- a list item:\n" + // 6
		"   ```sh\n" + // 7
		"   go test ./...\n" + // 8
		"     indented more\n" + // 9
		"   ```\n" + // 10
		"<!-- doccheck: skip shows an API of the next release -->\n" + // 11
		"```go\n" + // 12
		"x := future.Thing()\n" + // 13
		"```\n" + // 14
		"```\n" + // 15
		"GET /v2/health/live\n" + // 16
		"```\n" // 17
	got := markdown("README.md", []byte(md))
	want := []Snippet{
		{File: "README.md", Line: 4, Lang: "go", Code: "p := serving.Chain(c.Middleware())(model)"},
		{File: "README.md", Line: 8, Lang: "sh", Code: "go test ./...\n  indented more"},
		{File: "README.md", Line: 13, Lang: "go", Code: "x := future.Thing()", Skip: "shows an API of the next release"},
		{File: "README.md", Line: 16, Code: "GET /v2/health/live"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d snippets %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("snippet %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestGoDocs(t *testing.T) {
	src := `// Package p is a package.
//
//   - a list item, indented
//     over two lines
//
// Compose:
//
//	p := serving.Chain(c.Middleware())(model)
//
//	defer serving.Close(p)
//
// Routes:
//
//	GET /v2
//
//go:generate echo directives are not shown
package p

// F has an example:
//
//	p.F()
func F() {}

// g is not exported:
//
//	g()
func g() {}

// T holds a code block:
//
//	var t p.T
type T int
`
	path := filepath.Join(t.TempDir(), "doc.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := GoDocs(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Snippet{
		{File: path, Line: 8, Code: "p := serving.Chain(c.Middleware())(model)\n\ndefer serving.Close(p)"},
		{File: path, Line: 14, Code: "GET /v2"},
		{File: path, Line: 21, Code: "p.F()"},
		{File: path, Line: 31, Code: "var t p.T"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d snippets %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("snippet %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestIsGo(t *testing.T) {
	for _, tc := range []struct {
		lang, code string
		want       bool
	}{
		{"go", "GET /v2", true}, // labelled go: checked, and fails
		{"sh", "x := 1", false},
		{"", "h := httpapi.New()", true},
		{"", "h.Handle(\"fraud\", model)", true},
		{"", "defer serving.Close(p)", true},
		{"", "rollout.GuardFunc(func(ctx context.Context, s rollout.Snapshot) error {\n\treturn nil\n})", true},
		{"", "func (m *M) Predict() {}", true},
		{"", "GET  /v2/models/{name}[/versions/{v}]           model metadata (serving.MetadataOf)", false},
		{"", "dynamic_batching              mapped by the loader to package batch (Config.Batching):", false},
		{"", "go test -run '^$' -bench . -benchmem ./bench/overhead", false},
		{"", "transactions.parquet ─► batch/job.Run(v1) ─► scores/part-*.parquet", false},
		{"", "  → telemetry → drift → rollout router (shadow copy to a challenger)", false},
		{"", "quiet box (load 0.3):  batched/unbatched 0.89× → 1.66× (379k rows/s),", false},
		{"", "kubectl create secret generic servekit-cache \\\n  --from-literal=x=\"$(openssl rand -hex 32)\"", false},
	} {
		if got := (Snippet{Lang: tc.lang, Code: tc.code}).IsGo(); got != tc.want {
			t.Errorf("IsGo(%q, %q) = %v, want %v", tc.lang, tc.code, got, tc.want)
		}
	}
}

// TestCheck runs the checker on snippets against this module's packages:
// what compiles passes, and a snippet that drifted from the API fails at
// its line in the document.
func TestCheck(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := Modules(root)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{
		Root:    root,
		Modules: mods,
		Imports: map[string]string{
			"batch":       "github.com/servekit/servekit/batch",
			"cache":       "github.com/servekit/servekit/cache",
			"context":     "context",
			"fmt":         "fmt",
			"rollout":     "github.com/servekit/servekit/rollout",
			"serving":     "github.com/servekit/servekit/serving",
			"servingtest": "github.com/servekit/servekit/serving/servingtest",
		},
		Vars: map[string]string{
			"c":     "*cache.Cache",
			"model": "serving.Predictor",
		},
	}
	for _, tc := range []struct {
		name, code string
		kind       Kind
		err        string // "" when it must compile
	}{
		{"statements", "p := serving.Chain(c.Middleware(), batch.Middleware())(model)\ndefer serving.Close(p)", Stmts, ""},
		{"two results", "p := serving.Chain(cache.New(), batch.New(model))(model)\n_ = p",
			Stmts, "README.md:10:20: multiple-value cache.New() (value of type (*cache.Cache, error)) in single-value context"},
		{"later line", "p := serving.Chain(c.Middleware())(model)\np.Close()", Stmts, "README.md:11:"},
		{"free name", "p := c.Middleware()(other)", Stmts, "README.md:10:21: undefined: other"},
		{"elided arguments", "p := serving.Chain(cache.New(...))(model)", 0, "README.md:10:"},
		{"elided lines", "b, err := batch.New(model)\n...\nif err != nil { ... }\ndefer serving.Close(b)", Stmts, ""},
		{"unused in a fragment", "p := c.Middleware()(model)", Stmts, ""},
		{"unused in a file", "package main\n\nfunc main() {\n\tx := 1\n}", File, "README.md:13:2: declared and not used: x"},
		{"file imports nothing for you", "package main\n\nfunc main() {\n\tfmt.Println()\n}", File, "undefined: fmt"},
		{"declarations", "func trace(next serving.Predictor) serving.Predictor {\n\treturn next\n}", Decls, ""},
		{"expression", "rollout.GuardFunc(func(ctx context.Context, s rollout.Snapshot) error {\n\treturn nil\n})", Expr, ""},
		{"call statement", "fmt.Println(serving.CodeOf(nil))", Stmts, ""},
		{"imports then statements", "import \"github.com/servekit/servekit/limit\"\n\np := limit.Middleware()(model)", Stmts, ""},
		{"import misused", "fmt := 1\n_ = fmt.Sprint()", Stmts, "fmt.Sprint undefined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, err := c.Check(Snippet{File: "README.md", Line: 10, Lang: "go", Code: tc.code})
			if kind != tc.kind {
				t.Errorf("kind %v, want %v", kind, tc.kind)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("failed:\n%v", err)
			case tc.err != "" && err == nil:
				t.Errorf("passed, want an error with %q", tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Errorf("error\n%v\nwant one with %q", err, tc.err)
			}
		})
	}
}

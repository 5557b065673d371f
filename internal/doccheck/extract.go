package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Snippet is one block of code a reader sees in a document.
type Snippet struct {
	File string // the document, as its path was given
	Line int    // line of the block's first code line in File
	Lang string // a Markdown fence's language; "" for a doc comment or an unlabelled fence
	Code string // the block, its common indentation removed
	Skip string // the reason a doccheck marker gave, if one says to leave it
}

func (s Snippet) String() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// IsGo reports whether the snippet is Go a reader is meant to take as
// code: a fence labelled go, or an unlabelled block (doc comments have no
// labels) that looks like Go. Tables, diagrams, routes, benchmark output
// and shell lines do not, so they are left alone without a marker.
func (s Snippet) IsGo() bool {
	switch strings.ToLower(s.Lang) {
	case "go", "golang":
		return true
	case "":
		return looksLikeGo(s.Code)
	}
	return false
}

var (
	// goLine is a line only Go starts that way: a keyword that opens a
	// declaration or statement, or an assignment with :=.
	goLine = regexp.MustCompile(`^\s*(package|import|func|type|var|const|defer|return)\b|^\s*(if|for|switch|select)\b.*\{\s*$|:=`)
	// qualifiedCall is pkg.Name( or value.Method(, which prose in a table
	// or a route list does not write without a space before the paren.
	qualifiedCall = regexp.MustCompile(`(^|[\s(,={!&*])[a-z][A-Za-z0-9_]*\.[A-Z][A-Za-z0-9_]*\(`)
	// shellLine is a command line: it may well hold a qualifiedCall inside
	// a quoted Go expression, but it is not Go.
	shellLine = regexp.MustCompile(`^\s*(\$ |go (test|run|build|vet|install|get|tool) |cd |curl |make |kubectl |docker )`)
)

func looksLikeGo(code string) bool {
	for _, l := range strings.Split(code, "\n") {
		if shellLine.MatchString(l) {
			return false
		}
	}
	for _, l := range strings.Split(code, "\n") {
		if goLine.MatchString(l) || qualifiedCall.MatchString(l) {
			return true
		}
	}
	return false
}

// markerRE is the marker a Markdown document puts on the line before a
// fence to leave it unchecked: <!-- doccheck: skip REASON -->. HTML
// comments do not render, so the reader does not see it.
var markerRE = regexp.MustCompile(`^\s*<!--\s*doccheck:\s*skip\b\s*(.*?)\s*-->\s*$`)

// Markdown returns the fenced code blocks of a Markdown file, indented
// fences (inside list items) included.
func Markdown(path string) ([]Snippet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return markdown(path, b), nil
}

var fenceRE = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^\\s`]*)")

func markdown(path string, b []byte) []Snippet {
	var (
		out    []Snippet
		cur    *Snippet
		indent int
		fence  string
		code   []string
		prev   string // the line before the current one
		n      int
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur == nil {
			if m := fenceRE.FindStringSubmatch(line); m != nil {
				cur = &Snippet{File: path, Line: n + 1, Lang: m[3]}
				indent, fence, code = len(m[1]), m[2], nil
				if mm := markerRE.FindStringSubmatch(prev); mm != nil {
					cur.Skip = mm[1]
					if cur.Skip == "" {
						cur.Skip = "marked"
					}
				}
			}
			prev = line
			continue
		}
		if t := strings.TrimLeft(line, " "); strings.HasPrefix(t, fence) && strings.TrimSpace(strings.TrimLeft(t, fence[:1])) == "" {
			cur.Code = strings.Join(code, "\n")
			out = append(out, *cur)
			cur, prev = nil, line
			continue
		}
		// CommonMark removes up to the fence's indentation from each line.
		trim := 0
		for trim < indent && trim < len(line) && line[trim] == ' ' {
			trim++
		}
		code = append(code, line[trim:])
	}
	return out
}

// GoDocs returns the code blocks of the doc comments of a Go file that go
// doc shows: the package's, and those of exported declarations (functions,
// methods, types, constants and variables).
func GoDocs(path string) ([]Snippet, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []Snippet
	add := func(cg *ast.CommentGroup) {
		if cg != nil {
			out = append(out, commentBlocks(fset, path, cg)...)
		}
	}
	add(f.Doc)
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() {
				add(d.Doc)
			}
		case *ast.GenDecl:
			add(d.Doc)
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						add(s.Doc)
					}
				case *ast.ValueSpec:
					add(s.Doc)
				}
			}
		}
	}
	return out, nil
}

// commentBlocks returns the code blocks of a doc comment as go/doc/comment
// parses them (what go doc and pkg.go.dev render as code), each with the
// source line of its first line.
func commentBlocks(fset *token.FileSet, path string, cg *ast.CommentGroup) []Snippet {
	var lines []string
	var lineOf []int
	for _, c := range cg.List {
		line := fset.Position(c.Slash).Line
		if strings.HasPrefix(c.Text, "//") {
			t := c.Text[2:]
			if directive(t) {
				continue
			}
			lines = append(lines, strings.TrimPrefix(t, " "))
			lineOf = append(lineOf, line)
			continue
		}
		for i, l := range strings.Split(strings.TrimSuffix(c.Text[2:], "*/"), "\n") {
			lines = append(lines, l)
			lineOf = append(lineOf, line+i)
		}
	}
	var p comment.Parser
	doc := p.Parse(strings.Join(lines, "\n"))
	var out []Snippet
	from := 0
	for _, b := range doc.Content {
		c, ok := b.(*comment.Code)
		if !ok {
			continue
		}
		text := strings.TrimSuffix(c.Text, "\n")
		first := strings.TrimSpace(strings.SplitN(text, "\n", 2)[0])
		// The parser removed the block's indentation; find where the block
		// starts among the comment's lines, after the previous one.
		at := -1
		for j := from; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == first && strings.TrimLeft(lines[j], " \t") != lines[j] {
				at = j
				break
			}
		}
		if at < 0 { // cannot happen for a block the parser found; keep it checkable
			at = from
		}
		out = append(out, Snippet{File: path, Line: lineOf[at], Code: text})
		from = at + strings.Count(text, "\n") + 1
	}
	return out
}

// directive reports whether a // comment's text (without the slashes) is a
// directive such as go:build, which go doc leaves out.
func directive(t string) bool {
	if strings.HasPrefix(t, "line ") || strings.HasPrefix(t, "export ") || strings.HasPrefix(t, "extern ") {
		return true
	}
	i := strings.IndexByte(t, ':')
	if i <= 0 || i+1 >= len(t) {
		return false
	}
	for _, r := range t[:i] {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	r := t[i+1]
	return 'a' <= r && r <= 'z' || '0' <= r && r <= '9'
}

// Documents returns the code blocks a reader of the tree under root sees:
// every Markdown file's fences and every doc comment go doc shows, in all the
// modules under root. Paths are relative to root. Generated output and
// vendored code (testdata, third_party, node_modules, hidden directories)
// are left out.
func Documents(root string) ([]Snippet, error) {
	var out []Snippet
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && skipDir(name) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		var snips []Snippet
		switch {
		case strings.HasSuffix(name, ".md"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			snips = markdown(rel, b)
		case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"):
			snips, err = GoDocs(path)
			if err != nil {
				return err
			}
			for i := range snips {
				snips[i].File = rel
			}
		}
		out = append(out, snips...)
		return nil
	})
	return out, err
}

func skipDir(name string) bool {
	switch name {
	case "testdata", "third_party", "node_modules", "vendor":
		return true
	}
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

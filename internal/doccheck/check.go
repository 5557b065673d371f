package doccheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Module is a Go module whose packages snippets import.
type Module struct {
	Dir  string // the directory holding its go.mod
	Path string // its module path
}

// Checker type-checks Go snippets against the packages of Modules.
type Checker struct {
	// Root is the directory relative document paths start from ("" for
	// the working directory).
	Root string
	// Modules are where snippets compile: a snippet compiles in the
	// innermost module holding its document, or in a nested module one of
	// its imports belongs to (the root README showing the beam module).
	Modules []Module
	// Imports maps a package name to its import path, for the packages a
	// fragment uses without importing them (as goimports would add them).
	Imports map[string]string
	// Vars maps a free variable of a fragment to its type, as Go source
	// (e.g. "ctx": "context.Context"): the names a snippet takes from the
	// prose around it. A name neither declared nor listed is an error.
	Vars map[string]string

	fset    *token.FileSet
	loaders map[string]*loader // by module dir
}

// Kind is what a Go snippet is, which decides how it is wrapped.
type Kind int

const (
	File  Kind = iota + 1 // a whole file, from its package clause: checked as it is
	Decls                 // declarations (imports allowed): put in a file
	Stmts                 // statements, perhaps after imports: put in a function body
	Expr                  // one expression, a value the text shows: assigned to _ in a function body
)

func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Decls:
		return "declarations"
	case Stmts:
		return "statements"
	case Expr:
		return "expression"
	}
	return "?"
}

// Check type-checks one Go snippet. The error lists every problem at its
// position in the document. A fragment (Decls, Stmts, Expr) may leave
// variables unused, since it shows a step and stops; a File may not.
func (c *Checker) Check(s Snippet) (Kind, error) {
	if c.fset == nil {
		c.fset = token.NewFileSet()
		c.loaders = map[string]*loader{}
	}
	u, err := c.parse(s)
	if err != nil {
		return 0, err
	}
	mod, err := c.moduleOf(s.File)
	if err != nil {
		return u.kind, err
	}
	for range 8 {
		paths := u.paths()
		m := c.moduleFor(mod, paths)
		l := c.loader(m)
		if err := l.ensure(paths); err != nil {
			return u.kind, err
		}
		files, err := u.files(c.fset)
		if err != nil {
			return u.kind, err
		}
		var errs []types.Error
		conf := types.Config{
			Importer: l.importer(c.fset),
			Error:    func(err error) { errs = append(errs, err.(types.Error)) },
		}
		conf.Check("snippet", c.fset, files, nil)
		if u.shown(errs) {
			continue
		}
		if !u.resolve(c, errs) {
			return u.kind, u.report(errs)
		}
	}
	return u.kind, fmt.Errorf("%s: names still unresolved after 8 rounds", s)
}

// unit is a snippet on its way to a compilable package: its parts and
// what resolution added to them.
type unit struct {
	s           Snippet
	kind        Kind
	head, body  string // leading import lines, then the rest (a File: all in body)
	bodyLine    int    // line of body in the document
	single      bool   // Stmts: the body is one expression
	explicit    []string
	imports     map[string]string // added: name → path, to the snippet's file
	vars        map[string]string // added: name → type, to the prelude
	varsImports map[string]string // added: name → path, to the prelude
}

// parse classifies the snippet by parsing it in turn as a file, as
// declarations and as statements.
func (c *Checker) parse(s Snippet) (*unit, error) {
	code := elide(s.Code)
	u := &unit{s: s, imports: map[string]string{}, vars: map[string]string{}, varsImports: map[string]string{}}
	fset := token.NewFileSet()
	if firstToken(code) == token.PACKAGE {
		f, err := parser.ParseFile(fset, "", lineDirective(s.File, s.Line)+code, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		u.kind, u.body, u.bodyLine = File, code, s.Line
		u.explicit = importPaths(f)
		return u, nil
	}
	head, body := splitImports(code)
	u.head, u.body = head, body
	u.bodyLine = s.Line + strings.Count(head, "\n")
	u.kind = Decls
	f, err := parser.ParseFile(fset, "", u.source(), parser.SkipObjectResolution)
	if err != nil {
		u.kind = Stmts
		var err2 error
		f, err2 = parser.ParseFile(fset, "", u.source(), parser.SkipObjectResolution)
		if err2 != nil {
			if firstToken(body) == token.FUNC || firstToken(body) == token.TYPE {
				return nil, err // declarations that do not parse
			}
			return nil, err2
		}
	}
	u.explicit = importPaths(f)
	if u.kind == Stmts && head == "" {
		_, err := parser.ParseExpr(body)
		u.single = err == nil
	}
	return u, nil
}

// source is the snippet's file: the package clause, the added imports,
// then the snippet, each part with a //line directive so that positions
// are the document's.
func (u *unit) source() string {
	var b strings.Builder
	if u.kind == File {
		b.WriteString(lineDirective(u.s.File, u.s.Line))
		b.WriteString(u.body)
		return b.String()
	}
	b.WriteString("package snippet\n\n")
	writeImports(&b, u.imports)
	if u.head != "" {
		b.WriteString(lineDirective(u.s.File, u.s.Line))
		b.WriteString(u.head)
		b.WriteString("\n")
	}
	switch u.kind {
	case Stmts:
		b.WriteString("func _() {\n")
	case Expr:
		b.WriteString("func _() {\n_ =\n")
	}
	b.WriteString(lineDirective(u.s.File, u.bodyLine))
	b.WriteString(u.body)
	switch u.kind {
	case Stmts:
		b.WriteString("\n}")
	case Expr:
		b.WriteString("\n}")
	}
	b.WriteString("\n")
	return b.String()
}

const (
	wrapperName = "doccheck-wrapper.go"
	preludeName = "doccheck-prelude.go"
)

// prelude declares the free variables the snippet uses.
func (u *unit) prelude() string {
	var b strings.Builder
	b.WriteString("package snippet\n\n")
	writeImports(&b, u.varsImports)
	for _, name := range sortedKeys(u.vars) {
		fmt.Fprintf(&b, "var %s %s\n", name, u.vars[name])
	}
	return b.String()
}

func (u *unit) files(fset *token.FileSet) ([]*ast.File, error) {
	f, err := parser.ParseFile(fset, wrapperName, u.source(), parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	files := []*ast.File{f}
	if len(u.vars) > 0 {
		p, err := parser.ParseFile(fset, preludeName, u.prelude(), parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("%s: a type in Vars: %w", u.s, err)
		}
		files = append(files, p)
	}
	return files, nil
}

// paths are the import paths the unit's files import.
func (u *unit) paths() []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]string{u.explicit, sortedValues(u.imports), sortedValues(u.varsImports)} {
		for _, p := range list {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// shown turns a Stmts snippet that is one expression the checker finds
// "not used" (a conversion such as rollout.GuardFunc(func...), a
// composite literal) into an Expr: the text shows a value, not a
// statement.
func (u *unit) shown(errs []types.Error) bool {
	if u.kind != Stmts || !u.single {
		return false
	}
	for _, e := range errs {
		if strings.HasSuffix(e.Msg, " is not used") {
			u.kind = Expr
			return true
		}
	}
	return false
}

// resolve adds an import or a prelude variable for each name the checker
// found undefined that the tables know, and reports whether it added any.
// A File gets nothing: it must be complete as the reader sees it.
func (u *unit) resolve(c *Checker, errs []types.Error) bool {
	if u.kind == File {
		return false
	}
	added := false
	for _, e := range errs {
		name, ok := strings.CutPrefix(e.Msg, "undefined: ")
		if !ok {
			continue
		}
		inPrelude := e.Fset.Position(e.Pos).Filename == preludeName
		path, isPkg := c.Imports[name]
		switch {
		case inPrelude && isPkg && u.varsImports[name] == "":
			u.varsImports[name], added = path, true
		case inPrelude:
		case isPkg && u.imports[name] == "":
			u.imports[name], added = path, true
		case !isPkg && c.Vars[name] != "" && u.vars[name] == "":
			u.vars[name], added = c.Vars[name], true
		}
	}
	return added
}

// unusedRE matches what a fragment may leave: a variable it declares and
// does not use, because the snippet stops before using it.
var unusedRE = regexp.MustCompile(`^declared and not used: `)

func (u *unit) report(errs []types.Error) error {
	var out, wrapper []error
	for _, e := range errs {
		switch file := e.Fset.Position(e.Pos).Filename; {
		case u.kind != File && unusedRE.MatchString(e.Msg):
		case file == wrapperName || file == preludeName:
			// An import added for a name the snippet then misused
			// ("use of package fmt not in selector"): that error says it.
			wrapper = append(wrapper, e)
		default:
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = wrapper
	}
	return errors.Join(out...)
}

// moduleOf is the innermost module holding a document.
func (c *Checker) moduleOf(file string) (Module, error) {
	if !filepath.IsAbs(file) {
		file = filepath.Join(c.Root, file)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return Module{}, err
	}
	var best Module
	for _, m := range c.Modules {
		d, err := filepath.Abs(m.Dir)
		if err != nil {
			return Module{}, err
		}
		if strings.HasPrefix(abs, d+string(filepath.Separator)) && len(d) > len(best.Dir) {
			best = Module{Dir: d, Path: m.Path}
		}
	}
	if best.Dir == "" {
		return best, fmt.Errorf("%s: in none of the modules", file)
	}
	return best, nil
}

// moduleFor is m, or the module nested in it that one of paths belongs to.
func (c *Checker) moduleFor(m Module, paths []string) Module {
	for _, p := range paths {
		for _, n := range c.Modules {
			if len(n.Path) > len(m.Path) && (p == n.Path || strings.HasPrefix(p, n.Path+"/")) {
				d, _ := filepath.Abs(n.Dir)
				m = Module{Dir: d, Path: n.Path}
			}
		}
	}
	return m
}

func (c *Checker) loader(m Module) *loader {
	l := c.loaders[m.Dir]
	if l == nil {
		l = &loader{dir: m.Dir, export: map[string]string{}, failed: map[string]string{}}
		// A nested module (beam/) requires the root at its last release;
		// the repository's go.work puts this checkout in its place, as
		// make test does for beam's own tests, so its snippets are checked
		// against the code beside them. The root module goes without.
		if root, err := filepath.Abs(c.Root); err == nil && root != m.Dir {
			if w := filepath.Join(root, "go.work"); fileExists(w) {
				l.work = w
			}
		}
		c.loaders[m.Dir] = l
		// One go list for every package of the table this module owns
		// (std and third-party ones too for the outermost), rather than
		// one per snippet: each go list costs a fraction of a second.
		var own []string
		for _, p := range sortedValues(c.Imports) {
			if c.owner(p) == m.Path || c.owner(p) == "" && m.Path == c.outermost() {
				own = append(own, p)
			}
		}
		l.preload = own
	}
	return l
}

// owner is the path of the innermost module an import path belongs to,
// "" for std and third-party packages.
func (c *Checker) owner(path string) string {
	best := ""
	for _, m := range c.Modules {
		if (path == m.Path || strings.HasPrefix(path, m.Path+"/")) && len(m.Path) > len(best) {
			best = m.Path
		}
	}
	return best
}

func (c *Checker) outermost() string {
	best := ""
	for _, m := range c.Modules {
		if best == "" || len(m.Path) < len(best) {
			best = m.Path
		}
	}
	return best
}

// loader finds the compiler's export data of a module's packages with go
// list -export, which builds what the build cache lacks (after go vet or
// go build, nothing). The gc importer reads it, so a snippet is
// type-checked against exactly what go build would compile it against.
type loader struct {
	dir    string
	work   string            // the go.work a nested module is built in, "" for none
	export map[string]string // import path → export data file
	failed map[string]string // import path → why go list could not give it
	imp    types.Importer
	// preload is listed with the first paths asked for.
	preload []string
}

func (l *loader) ensure(paths []string) error {
	paths = append(l.preload, paths...)
	l.preload = nil
	var missing []string
	for _, p := range paths {
		if _, ok := l.export[p]; !ok && l.failed[p] == "" && p != "unsafe" && p != "C" {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	goCmd, err := goTool()
	if err != nil {
		return err
	}
	cmd := exec.Command(goCmd, append([]string{"list", "-e", "-export", "-deps", "-json=ImportPath,Export,Error"}, missing...)...)
	cmd.Dir = l.dir
	if l.work != "" {
		cmd.Env = append(os.Environ(), "GOWORK="+l.work)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -export in %s: %v\n%s", l.dir, err, stderr.Bytes())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Export string
			Error              *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("go list -export in %s: %v", l.dir, err)
		}
		switch {
		case p.Error != nil:
			l.failed[p.ImportPath] = p.Error.Err
		case p.Export != "" || p.ImportPath == "unsafe":
			l.export[p.ImportPath] = p.Export
		}
	}
	for _, p := range missing {
		if _, ok := l.export[p]; !ok && l.failed[p] == "" {
			l.failed[p] = "go list gave no export data"
		}
	}
	return nil
}

func (l *loader) importer(fset *token.FileSet) types.Importer {
	if l.imp == nil {
		l.imp = importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
			if f := l.export[path]; f != "" {
				return os.Open(f)
			}
			if why := l.failed[path]; why != "" {
				return nil, errors.New(why)
			}
			return nil, fmt.Errorf("no export data for %q (not listed)", path)
		})
	}
	return l.imp
}

// goTool is the go command that runs the tests, or the one on PATH.
func goTool() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

// elide turns the two elisions a reader understands into Go: a line
// holding only "..." (code left out) and a block "{ ... }". Anything else
// written "..." (an argument list, say) stays, and fails.
func elide(code string) string {
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "..." {
			lines[i] = ""
		}
		lines[i] = strings.ReplaceAll(lines[i], "{ ... }", "{}")
	}
	return strings.Join(lines, "\n")
}

func lineDirective(file string, line int) string {
	return fmt.Sprintf("//line %s:%d:1\n", file, line)
}

func firstToken(code string) token.Token {
	var s scanner.Scanner
	fs := token.NewFileSet()
	s.Init(fs.AddFile("", -1, len(code)), []byte(code), nil, 0)
	_, tok, _ := s.Scan()
	return tok
}

// splitImports cuts a fragment's leading import declarations from the
// rest, so that statements can follow them.
func splitImports(code string) (head, rest string) {
	var s scanner.Scanner
	fs := token.NewFileSet()
	file := fs.AddFile("", -1, len(code))
	s.Init(file, []byte(code), nil, 0)
	end := 0
	for {
		_, tok, _ := s.Scan()
		if tok != token.IMPORT {
			break
		}
		depth := 0
		var pos token.Pos
		for {
			pos, tok, _ = s.Scan()
			if tok == token.EOF {
				return "", code
			}
			if tok == token.LPAREN {
				depth++
			}
			if tok == token.RPAREN {
				depth--
			}
			if tok == token.SEMICOLON && depth == 0 {
				break
			}
		}
		end = file.Offset(pos)
	}
	if end == 0 {
		return "", code
	}
	// Cut at the end of the line, so that the rest starts on a line of
	// its own and keeps its line numbers.
	if i := strings.IndexByte(code[end:], '\n'); i >= 0 {
		end += i
	} else {
		end = len(code)
	}
	return code[:end], strings.TrimPrefix(code[end:], "\n")
}

func importPaths(f *ast.File) []string {
	var out []string
	for _, s := range f.Imports {
		out = append(out, strings.Trim(s.Path.Value, "\"`"))
	}
	return out
}

func writeImports(b *strings.Builder, imports map[string]string) {
	if len(imports) == 0 {
		return
	}
	b.WriteString("import (\n")
	for _, name := range sortedKeys(imports) {
		fmt.Fprintf(b, "\t%s %q\n", name, imports[name])
	}
	b.WriteString(")\n\n")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

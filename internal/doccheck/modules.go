package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Modules returns the module at root and every module nested under it.
func Modules(root string) ([]Module, error) {
	var out []Module
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "go.mod" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
				out = append(out, Module{Dir: filepath.Dir(path), Path: strings.Trim(strings.TrimSpace(p), `"`)})
				return nil
			}
		}
		return fmt.Errorf("%s: no module line", path)
	})
	return out, err
}

// PackageNames maps the name of every package a user can import from the
// modules (not commands, not internal) to its import path, as goimports
// would find them. A name two packages share maps to neither: a snippet
// using it must import it.
func PackageNames(mods []Module) (map[string]string, error) {
	out := map[string]string{}
	shared := map[string]bool{}
	nested := map[string]bool{}
	for _, m := range mods {
		nested[filepath.Clean(m.Dir)] = true
	}
	for _, m := range mods {
		err := filepath.WalkDir(m.Dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if path != m.Dir && (skipDir(d.Name()) || d.Name() == "internal" || nested[filepath.Clean(path)]) {
				return filepath.SkipDir
			}
			name, err := packageName(path)
			if err != nil || name == "" || name == "main" {
				return err
			}
			rel, err := filepath.Rel(m.Dir, path)
			if err != nil {
				return err
			}
			ip := m.Path
			if rel != "." {
				ip += "/" + filepath.ToSlash(rel)
			}
			if prev, ok := out[name]; ok && prev != ip {
				shared[name] = true
			}
			out[name] = ip
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for name := range shared {
		delete(out, name)
	}
	return out, nil
}

// packageName is the package of the non-test Go files in dir, "main" if
// any of them is a command, "" if there are none.
func packageName(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	name := ""
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, n), nil, parser.PackageClauseOnly)
		if err != nil {
			return "", err
		}
		if f.Name.Name == "main" {
			return "main", nil
		}
		name = f.Name.Name
	}
	return name, nil
}

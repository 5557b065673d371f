package repository

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/servekit/servekit/serving"
)

// maxNameLen bounds model and file names: a name travels in URLs, metric
// labels and log lines.
const maxNameLen = 128

// ValidModelName reports whether s may name a model: 1 to 128 of
// A-Z a-z 0-9 _ . -, not starting with a dot. That is safe in a URL path
// segment, a file name and a metric label without escaping, and excludes
// everything a path traversal needs ("..", "/", "\", NUL). Entries of the
// root that are not valid names are ignored (and logged once).
func ValidModelName(s string) error {
	if err := checkName(s); err != nil {
		return serving.Errorf(serving.InvalidArgument, "repository: model name %q: %v", s, err)
	}
	return nil
}

func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a name", s)
	case len(s) > maxNameLen:
		return fmt.Errorf("longer than %d bytes", maxNameLen)
	case s[0] == '.':
		return errors.New("hidden names (a leading dot) are not allowed")
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("character %q is not allowed (use A-Z a-z 0-9 _ . -)", c)
		}
	}
	return nil
}

// parseVersion reads a version directory name as Triton does: a positive
// decimal integer without a leading zero ("1", "42"; not "0", "01", "+1",
// "v2"). The canonical spelling is the only one, so "/versions/01" can never
// alias version 1.
func parseVersion(s string) (int64, error) {
	if s == "" || len(s) > 18 || s[0] < '1' || s[0] > '9' {
		return 0, fmt.Errorf("version %q: versions are positive integers without a leading zero", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("version %q: versions are positive integers without a leading zero", s)
	}
	return n, nil
}

// checkVersion is parseVersion as a serving error, for names from callers.
func checkVersion(model, v string) (int64, error) {
	n, err := parseVersion(v)
	if err != nil {
		return 0, serving.Errorf(serving.InvalidArgument, "repository: model %q: %v", model, err)
	}
	return n, nil
}

// checkRelPath checks a relative path written in a config file: slash
// separated valid names, so it cannot climb out with "..", start at "/" or
// reach a hidden file.
func checkRelPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for part := range strings.SplitSeq(p, "/") {
		if err := checkName(part); err != nil {
			return fmt.Errorf("path %q: %v", p, err)
		}
	}
	return nil
}

// resolveWithin joins rel (already checked names) to base, resolves every
// symlink and refuses a result outside realBase, itself a resolved path. A
// link that stays inside (a Kubernetes ConfigMap's ..data indirection, a
// "latest" link to a version) is fine; one that leads out of the repository
// is refused, so a file a request names can only ever be inside the root.
func resolveWithin(realBase string, rel ...string) (string, error) {
	p := filepath.Join(append([]string{realBase}, rel...)...)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if !inside(realBase, real) {
		return "", fmt.Errorf("%s leads out of %s (to %s)", p, realBase, real)
	}
	return real, nil
}

// inside reports whether path is base or below it; both are clean,
// absolute and resolved.
func inside(base, path string) bool {
	rel, err := filepath.Rel(base, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// realDir resolves a directory given by the user (the root), which may
// itself be a symlink.
func realDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	return real, nil
}

package atomicfile_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/servekit/servekit/internal/atomicfile"
)

func TestWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.jsonl")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("before Commit the path holds %q", b)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Error("a second Commit succeeded")
	}
	f.Abort() // after Commit: nothing
	if b, _ := os.ReadFile(path); string(b) != "half" {
		t.Errorf("after Commit the path holds %q", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := atomicfile.WriteFile(path, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(path); string(b) != "whole" || len(entries) != 1 {
		t.Errorf("content %q, %d entries: want only the file", b, len(entries))
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := atomicfile.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	f.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d entries after Abort", len(entries))
	}
}

// What a crash leaves: Temps finds it with its final name; CommitTemp puts
// it there without replacing a file that has the name; RemoveTemp clears.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.csv", "b.csv"} {
		f, err := atomicfile.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(name) // never committed: the process "dies"
		f.Close()
	}
	// Not ours: a hidden file, a visible .tmp, a temp-like name without digits.
	for _, name := range []string{".hidden", "x.1.tmp", ".y.abc.tmp"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	temps, err := atomicfile.Temps(dir)
	if err != nil {
		t.Fatal(err)
	}
	var finals []string
	for _, tmp := range temps {
		finals = append(finals, filepath.Base(tmp.Final))
	}
	slices.Sort(finals)
	if !slices.Equal(finals, []string{"a.csv", "b.csv"}) {
		t.Fatalf("Temps finals %v", finals)
	}
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("taken"), 0o644)
	for _, tmp := range temps {
		name, err := atomicfile.CommitTemp(tmp.Path, tmp.Final)
		if err != nil {
			t.Fatal(err)
		}
		want := tmp.Final
		if filepath.Base(tmp.Final) == "a.csv" {
			want = filepath.Join(dir, "a-1.csv")
		}
		if name != want {
			t.Errorf("CommitTemp named %s, want %s", name, want)
		}
		if b, _ := os.ReadFile(name); string(b) != filepath.Base(tmp.Final) {
			t.Errorf("%s holds %q", name, b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.csv")); string(b) != "taken" {
		t.Errorf("CommitTemp replaced a file: %q", b)
	}
	if temps, _ := atomicfile.Temps(dir); len(temps) != 0 {
		t.Errorf("temps left: %v", temps)
	}

	f, _ := atomicfile.Create(filepath.Join(dir, "c"))
	f.Close()
	if n, err := atomicfile.RemoveTemp(dir); n != 1 || err != nil {
		t.Errorf("RemoveTemp = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".hidden")); err != nil {
		t.Error("RemoveTemp removed a file that is not a temporary one")
	}
}

// A replacement never looks older than what it replaced, even when the
// file-system clock has not moved: a poller comparing times sees it.
func TestReplacementLooksNewer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := atomicfile.WriteFile(path, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour) // as if the clock had not moved since
	os.Chtimes(path, future, future)
	if err := atomicfile.WriteFile(path, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().After(future) {
		t.Errorf("replacement's time %v is not after %v", st.ModTime(), future)
	}
}

// TestCommitAll commits files together: each is whole at its path, no
// temporary file is left, and a file committed already fails the group
// without renaming the others.
func TestCommitAll(t *testing.T) {
	dir := t.TempDir()
	var files []*atomicfile.File
	for _, name := range []string{"a", "b", "c"} {
		f, err := atomicfile.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(name + name)
		files = append(files, f)
	}
	if err := atomicfile.CommitAll(files...); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != name+name {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	d, _ := atomicfile.Create(filepath.Join(dir, "d"))
	if err := atomicfile.CommitAll(d, files[0]); err == nil {
		t.Error("committing a committed file again succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Errorf("d was renamed in a failed group: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("dir holds %d entries, want a, b, c", len(entries))
	}
}

package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// TempSuffix ends the name of every file still being written.
const TempSuffix = ".tmp"

// File is a file being written under a temporary name; Commit puts it at
// its path. It is an *os.File until then; not safe for concurrent use.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts writing the file that Commit puts at path, with mode 0644
// (os.CreateTemp's 0600 suits a secret, not a data file).
func Create(path string) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+TempSuffix)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{File: f, path: path}, nil
}

// Path is where Commit puts the file.
func (f *File) Path() string { return f.path }

// Commit syncs the file, closes it and renames it to its path, replacing
// what was there, then syncs the directory. On error the temporary file is
// removed: what was at the path is untouched.
//
// The file it replaces never looks newer: when the clock has not moved
// past that file's modification time (a coarse file-system clock, two
// writes within one tick), the new file's is set just after it, so a
// poller that compares times (package repository) sees every replacement.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	f.done = true
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = laterThan(f.Name(), f.path)
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return SyncDir(filepath.Dir(f.path))
}

func laterThan(tmp, old string) error {
	o, err := os.Stat(old)
	if err != nil {
		return nil // nothing replaced
	}
	n, err := os.Stat(tmp)
	if err != nil || n.ModTime().After(o.ModTime()) {
		return err
	}
	t := o.ModTime().Add(time.Millisecond)
	return os.Chtimes(tmp, t, t)
}

// CommitAll commits several files as one: it syncs them all at once (one
// disk round trip rather than one each), closes and renames each, then
// syncs each directory once, so that every rename survives a crash. A
// crash before it returns leaves any subset of them renamed. After an
// error, the files not renamed are removed. A batch job commits the parts
// finished together this way.
func CommitAll(files ...*File) error {
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		if f.done {
			errs[i] = errors.New("atomicfile: already committed or aborted")
			continue
		}
		wg.Go(func() { errs[i] = f.Sync() })
	}
	wg.Wait()
	err := errors.Join(errs...)
	dirs := map[string]bool{}
	for _, f := range files {
		if f.done {
			continue
		}
		f.done = true
		cerr := f.File.Close()
		if err == nil && cerr == nil {
			cerr = laterThan(f.Name(), f.path)
		}
		if err == nil && cerr == nil {
			cerr = os.Rename(f.Name(), f.path)
		}
		if err != nil || cerr != nil {
			os.Remove(f.Name())
			err = errors.Join(err, cerr)
			continue
		}
		dirs[filepath.Dir(f.path)] = true
	}
	for dir := range dirs {
		err = errors.Join(err, SyncDir(dir))
	}
	return err
}

// Abort closes and removes the temporary file; after Commit it does
// nothing. It is safe to defer.
func (f *File) Abort() {
	if !f.done {
		f.done = true
		f.File.Close()
		os.Remove(f.Name())
	}
}

// WriteFile writes data to path through a File: the whole of it, or
// nothing.
func WriteFile(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Temp is a temporary file a crash left: its path and the path Commit
// would have given it.
type Temp struct {
	Path, Final string
}

// Temps lists the temporary files left in dir, with their final paths.
func Temps(dir string) ([]Temp, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Temp
	for _, e := range entries {
		if final, ok := finalName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, Temp{Path: filepath.Join(dir, e.Name()), Final: filepath.Join(dir, final)})
		}
	}
	return out, nil
}

// finalName undoes Create's naming: ".NAME.RANDOM.tmp" is NAME's.
func finalName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return "", false
	}
	if rest, ok = strings.CutSuffix(rest, TempSuffix); !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || strings.Trim(rest[i+1:], "0123456789") != "" {
		return "", false
	}
	return rest[:i], true
}

// RemoveTemp deletes the temporary files left in dir and returns how many
// it removed: for writers that redo their work after a crash.
func RemoveTemp(dir string) (int, error) {
	temps, err := Temps(dir)
	n := 0
	for _, t := range temps {
		if err := os.Remove(t.Path); err != nil && !os.IsNotExist(err) {
			return n, err
		}
		n++
	}
	return n, err
}

// CommitTemp moves a temporary file a crash left to a final name: final
// itself when no file has it, else final with "-1", "-2"... before its
// extension. It never replaces a file (a link fails on an existing name;
// the temporary name is then removed), syncs the file and the directory,
// and returns the name it used.
func CommitTemp(tmp, final string) (string, error) {
	if err := syncFile(tmp); err != nil {
		return "", err
	}
	ext := filepath.Ext(final)
	base := strings.TrimSuffix(final, ext)
	for i := 0; i < 1000; i++ {
		name := final
		if i > 0 {
			name = fmt.Sprintf("%s-%d%s", base, i, ext)
		}
		err := os.Link(tmp, name)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.Remove(tmp); err != nil {
			return name, err
		}
		return name, SyncDir(filepath.Dir(name))
	}
	return "", fmt.Errorf("atomicfile: no free name for %s", final)
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

package rowio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// TempSuffix ends the name of every file still being written by
// CreateAtomic. What a crash leaves with it is garbage: RemoveTemp clears it.
const TempSuffix = ".tmp"

// AtomicFile is a file written under a temporary name in the directory of
// its final path and moved there by Commit, after an fsync, with a
// rename (atomic on POSIX file systems) and an fsync of the directory:
// a reader, or a job restarted after kill -9, sees the whole file or none
// of it.
type AtomicFile struct {
	*os.File
	path string
	done bool
}

// CreateAtomic starts writing the file that Commit puts at path.
func CreateAtomic(path string) (*AtomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*"+TempSuffix)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp's 0600 suits a secret, not a data file
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &AtomicFile{File: f, path: path}, nil
}

// Commit syncs the file, closes it and renames it to its path, replacing
// what was there, then syncs the directory so the rename survives a crash.
func (a *AtomicFile) Commit() error {
	if a.done {
		return errors.New("rowio: atomic file already committed or aborted")
	}
	a.done = true
	err := a.Sync()
	if cerr := a.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.Name(), a.path)
	}
	if err != nil {
		os.Remove(a.Name())
		return err
	}
	return SyncDir(filepath.Dir(a.path))
}

// CommitAll commits several files as one: it syncs them all at once (one
// disk round trip rather than one each), closes and renames each, then
// syncs each directory once, so that every rename survives a crash. A
// crash before it returns leaves any subset of them renamed. After an
// error, the files not renamed are removed. A batch job commits the
// parts finished together this way.
func CommitAll(files ...*AtomicFile) error {
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, a := range files {
		if a.done {
			errs[i] = errors.New("rowio: atomic file already committed or aborted")
			continue
		}
		wg.Go(func() { errs[i] = a.Sync() })
	}
	wg.Wait()
	err := errors.Join(errs...)
	dirs := map[string]bool{}
	for _, a := range files {
		if a.done {
			continue
		}
		a.done = true
		cerr := a.File.Close()
		if err == nil && cerr == nil {
			cerr = os.Rename(a.Name(), a.path)
		}
		if err != nil || cerr != nil {
			os.Remove(a.Name())
			err = errors.Join(err, cerr)
			continue
		}
		dirs[filepath.Dir(a.path)] = true
	}
	for dir := range dirs {
		err = errors.Join(err, SyncDir(dir))
	}
	return err
}

// Abort closes and removes the temporary file; after Commit it does
// nothing. It is safe to defer.
func (a *AtomicFile) Abort() {
	if !a.done {
		a.done = true
		a.File.Close()
		os.Remove(a.Name())
	}
}

// WriteFileAtomic writes data to path through an AtomicFile.
func WriteFileAtomic(path string, data []byte) error {
	a, err := CreateAtomic(path)
	if err != nil {
		return err
	}
	defer a.Abort()
	if _, err := a.Write(data); err != nil {
		return err
	}
	return a.Commit()
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

// RemoveTemp deletes the temporary files CreateAtomic left in dir (a
// crash mid-write leaves them), and returns how many it removed.
func RemoveTemp(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, ".") && strings.HasSuffix(name, TempSuffix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

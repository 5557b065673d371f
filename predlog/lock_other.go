//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package predlog

import (
	"os"
	"path/filepath"
)

const lockName = ".predlog.lock"

// lockDir on systems without flock only opens the lock file: keep one
// FileSink per directory by hand there.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
}

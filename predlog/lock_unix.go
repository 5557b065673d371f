//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package predlog

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the file a FileSink locks in its directory.
const lockName = ".predlog.lock"

// lockDir takes an exclusive flock on dir's lock file. The kernel drops it
// when the descriptor closes, the process's end (a crash, kill -9)
// included, so a lock never outlives its holder and recovery can trust
// that no live sink is writing the temporary files it finds.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("predlog: %s is in use by another FileSink (%s is locked): give each sink a directory of its own: %w", dir, lockName, err)
	}
	return f, nil
}

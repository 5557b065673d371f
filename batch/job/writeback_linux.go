package job

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks Linux to start writing bytes [off, off+n) of f
// (sync_file_range with SYNC_FILE_RANGE_WRITE: it queues the pages for
// writing and returns). Errors are left to the commit's fsync.
func startWriteback(f *os.File, off, n int64) {
	c, err := f.SyscallConn()
	if err != nil {
		return
	}
	c.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}

//go:build !linux

package job

import "os"

// startWriteback has no portable form outside Linux: the commit's fsync
// writes the whole part there.
var startWriteback func(f *os.File, off, n int64)

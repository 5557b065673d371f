//go:build unix

package batch

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, all threads (ONNX
// Runtime's included); 0 if it cannot tell.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

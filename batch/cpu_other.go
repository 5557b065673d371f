//go:build !unix

package batch

import "time"

// processCPU cannot tell here: the cost model goes by rows per second
// alone.
func processCPU() time.Duration { return 0 }

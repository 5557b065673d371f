//go:build !unix

package telemetry

func cpuTimes() (user, system float64, ok bool) { return 0, 0, false }

package telemetry

import (
	"context"
	"errors"
	"os"
	"runtime/metrics"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Process metrics, named after OpenTelemetry's process and Go semantic
// conventions.
const (
	MetricProcessCPUTime     = "process.cpu.time"     // s, attribute cpu.mode = user|system
	MetricProcessMemoryUsage = "process.memory.usage" // By, resident set size
	MetricGoGCCycles         = "go.gc.cycles"         // {gc_cycle}, completed GC cycles
)

// StartProcess registers observable instruments for the process's CPU time
// and resident memory and for the number of completed GC cycles, read at
// each collection (no goroutine is started). It depends on the OTel API
// only.
//
// Why not the Prometheus client's process collector: it writes to a
// Prometheus registry, not to an OTel MeterProvider, so it could not feed
// an OTLP pipeline. And why not contrib's runtime instrumentation alone: it
// reports Go memory and goroutines but neither the process's CPU and RSS
// (cgo memory of ONNX Runtime included) nor GC cycles. promexport.StartRuntime
// starts both.
//
// CPU time comes from getrusage(2), RSS from /proc/self/statm; where either
// is unavailable (RSS off Linux) that metric is simply not observed.
func StartProcess(opts ...Option) error {
	c := newConfig(opts)
	m := c.mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	cpu, err1 := m.Float64ObservableCounter(MetricProcessCPUTime, metric.WithUnit("s"),
		metric.WithDescription("CPU time used by the process, by cpu.mode."))
	mem, err2 := m.Int64ObservableGauge(MetricProcessMemoryUsage, metric.WithUnit("By"),
		metric.WithDescription("Resident set size of the process, cgo allocations included."))
	gc, err3 := m.Int64ObservableCounter(MetricGoGCCycles, metric.WithUnit("{gc_cycle}"),
		metric.WithDescription("Completed garbage collection cycles."))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	user := metric.WithAttributeSet(attribute.NewSet(attribute.String("cpu.mode", "user")))
	system := metric.WithAttributeSet(attribute.NewSet(attribute.String("cpu.mode", "system")))
	var mu sync.Mutex // guards sample, which the runtime fills in place
	sample := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if u, s, ok := cpuTimes(); ok {
			o.ObserveFloat64(cpu, u, user)
			o.ObserveFloat64(cpu, s, system)
		}
		if rss, ok := residentBytes(); ok {
			o.ObserveInt64(mem, rss)
		}
		mu.Lock()
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			o.ObserveInt64(gc, int64(sample[0].Value.Uint64()))
		}
		mu.Unlock()
		return nil
	}, cpu, mem, gc)
	return err
}

// residentBytes reads the second field of /proc/self/statm (resident pages).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	i := 0
	for i < len(b) && b[i] != ' ' { // skip the first field (size)
		i++
	}
	i++
	var pages int64
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		pages = pages*10 + int64(b[i]-'0')
		n++
	}
	if n == 0 {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

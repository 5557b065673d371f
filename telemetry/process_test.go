package telemetry_test

import (
	"runtime"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/telemetry"
)

func TestStartProcess(t *testing.T) {
	h := newHarness(t)
	if err := telemetry.StartProcess(h.opts...); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	got := h.collect(t)

	cpu, ok := got[telemetry.MetricProcessCPUTime].(metricdata.Sum[float64])
	if !ok || !cpu.IsMonotonic || len(cpu.DataPoints) != 2 {
		t.Fatalf("%s: %#v, want a monotonic sum with user and system", telemetry.MetricProcessCPUTime, got[telemetry.MetricProcessCPUTime])
	}
	var total float64
	for _, dp := range cpu.DataPoints {
		total += dp.Value
	}
	if total <= 0 {
		t.Errorf("cpu time %v, want > 0", total)
	}
	if runtime.GOOS == "linux" {
		mem, ok := got[telemetry.MetricProcessMemoryUsage].(metricdata.Gauge[int64])
		if !ok || len(mem.DataPoints) != 1 || mem.DataPoints[0].Value < 1<<20 {
			t.Errorf("%s: %#v, want one point over 1 MiB", telemetry.MetricProcessMemoryUsage, got[telemetry.MetricProcessMemoryUsage])
		}
	}
	gc, ok := got[telemetry.MetricGoGCCycles].(metricdata.Sum[int64])
	if !ok || len(gc.DataPoints) != 1 || gc.DataPoints[0].Value < 1 {
		t.Errorf("%s: %#v, want at least one cycle", telemetry.MetricGoGCCycles, got[telemetry.MetricGoGCCycles])
	}
}

package quality

import (
	"slices"
	"time"
)

// Report is a monitor's state for a report: package report draws it (its
// Quality source), and anything else may read it. Treat it as read-only.
type Report struct {
	Generated time.Time
	// Versions, sorted by model and version.
	Versions []VersionReport
	// Alerts, newest first.
	Alerts []Alert
	// Stats, when set, are shown in the header.
	Stats *Stats
	// Metrics are the metrics judged (WithAlarmMetrics and WithThreshold's),
	// the ones worth a chart.
	Metrics []Metric
}

// VersionReport is one model version's state and recent windows.
type VersionReport struct {
	Model, Version string
	Status         Status
	// Results, newest first.
	Results []Result
}

// Report snapshots the monitor's windows, alarms and alerts. It never
// waits for the worker.
func (m *Monitor) Report() Report {
	st := m.Stats()
	r := Report{Generated: m.cfg.clock.Now(), Alerts: m.Alerts(), Stats: &st, Metrics: slices.Clone(m.cfg.alarmMetrics)}
	for _, k := range m.pub.keys() {
		r.Versions = append(r.Versions, VersionReport{
			Model: k.Model, Version: k.Version,
			Status: m.Status(k.Model, k.Version), Results: m.Results(k.Model, k.Version),
		})
	}
	return r
}

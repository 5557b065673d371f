package drift

import "time"

// Report is a monitor's state for a report: each model version's recent
// windows and the newest alerts. Package report draws it (its Drift and
// DriftResults sources). A Monitor makes one of its state (Report); a
// process that evaluates merged snapshots can fill one itself.
type Report struct {
	Generated time.Time
	Versions  []VersionReport
	// Alerts, newest first.
	Alerts []Alert
	// Stats, when set, are shown in the header.
	Stats *Stats
}

// VersionReport is one model version's results, newest first.
type VersionReport struct {
	Model, Version string
	Results        []Result
}

// Report snapshots the monitor's results and alerts.
func (m *Monitor) Report() Report {
	st := m.Stats()
	r := Report{Generated: m.cfg.clock.Now(), Alerts: m.Alerts(), Stats: &st}
	for _, k := range m.pub.keys() {
		r.Versions = append(r.Versions, VersionReport{Model: k.Model, Version: k.Version, Results: m.Results(k.Model, k.Version)})
	}
	return r
}

package onnx

// Fingerprint exposes the content fingerprint to the black-box tests.
var Fingerprint = fingerprint

// WatcherWaits reports whether m's watcher waits on one ctx shared by the
// runs in flight rather than polling them (watch.go).
func WatcherWaits(m *Model) bool {
	m.watcher.mu.Lock()
	defer m.watcher.mu.Unlock()
	return m.watcher.one != nil
}

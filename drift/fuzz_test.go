package drift_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/serving/servingtest"
)

// FuzzDecodeProfile feeds the profile decoder arbitrary bytes. Whatever it
// accepts must survive a round trip unchanged and be usable by a monitor:
// validation is what stands between a file and the monitor's arithmetic.
// Seeds are in testdata/fuzz/FuzzDecodeProfile.
func FuzzDecodeProfile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := drift.DecodeProfile(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := p.Encode(&buf); err != nil {
			t.Fatalf("encode an accepted profile: %v", err)
		}
		q, err := drift.DecodeProfile(&buf)
		if err != nil {
			t.Fatalf("the encoding of an accepted profile is refused: %v", err)
		}
		if p.Fingerprint() != q.Fingerprint() {
			t.Fatal("round trip changed the profile")
		}
		m, err := drift.NewMonitor(drift.WithProfile(p), drift.WithWindow(drift.CountWindow(1, 0)), drift.WithMinSamples(1))
		if err != nil {
			t.Fatalf("monitor refuses an accepted profile: %v", err)
		}
		defer m.Close()
		mw := m.Middleware()(servingtest.Linear(2))
		for _, x := range [][]float32{{0, 1}, {-1e30, 1e30}, {3, 4}} {
			mw.Predict(context.Background(), request(x))
		}
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if m.Stats().Panics != 0 {
			t.Fatal("observation panicked")
		}
	})
}

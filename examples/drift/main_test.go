package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/internal/orttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// The demo, shortened: the shift halfway is detected after it (never
// before), the retraining pipeline receives the alert with its report, and
// the HTML report is written.
func TestDemo(t *testing.T) {
	lib := orttest.Library(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.html")
	var out strings.Builder
	s, err := run(context.Background(), []string{
		"-ort-lib", lib, "-model", "../../testdata/models/fraud.onnx",
		"-rows", "6000", "-window", "500", "-training", "5000",
		"-report", report, "-profile-repo", dir,
	}, &out)
	require.NoError(t, err, out.String())
	t.Log(out.String())

	const window = 500
	require.NotZero(t, s.firstRaised.Index, "the shift was not detected")
	assert.Greater(t, (s.firstRaised.Index-1)*window, int64(s.shiftRow)-1,
		"the alarm was raised by a window that began before the shift")
	require.NotEmpty(t, s.alarms)
	for _, w := range s.alarms {
		assert.Greater(t, w.Index*window, int64(s.shiftRow), "window %d alarmed before the shift", w.Index)
	}

	require.NotEmpty(t, s.delivered, "the webhook delivered nothing")
	a := s.delivered[0]
	assert.Equal(t, drift.AlertRaised, a.Kind)
	assert.Equal(t, "fraud", a.Model)
	assert.Equal(t, "1", a.Version)
	assert.Contains(t, a.Raised, "foreign")
	assert.Contains(t, a.Raised, "amount")
	assert.Equal(t, s.firstRaised.Index, a.Result.Window.Index)
	f, ok := a.Result.Feature("amount")
	require.True(t, ok, "the alert carries the window's report")
	assert.True(t, f.Drifted)
	assert.Less(t, f.AdjustedP, f.Threshold)

	page, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(page), "ALARM")
	_, err = drift.ReadProfile(filepath.Join(dir, "fraud", "1", drift.ProfileFileName))
	assert.NoError(t, err, "the profile ships beside the model version")
}

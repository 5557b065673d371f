package quality_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/servekit/servekit/quality"
	"github.com/servekit/servekit/webhook"
)

// Quality alerts take the module's one alert path: a webhook.Sender
// delivers them with its retries and counters, keyed by their
// IdempotencyKey.
func TestAlertsThroughTheWebhook(t *testing.T) {
	type got struct {
		key string
		a   quality.Alert
	}
	deliveries := make(chan got, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a quality.Alert
		require.NoError(t, json.Unmarshal(b, &a))
		deliveries <- got{r.Header.Get("Idempotency-Key"), a}
	}))
	defer srv.Close()
	hook, err := webhook.New(srv.URL)
	require.NoError(t, err)
	m := newMonitor(t, binary, quality.WithWindow(quality.CountWindow(4)), quality.WithDetectors(),
		quality.WithHysteresis(1, 1), quality.WithAlertFunc(func(a quality.Alert) { hook.Send(a) }))
	p := m.Middleware()(echo)
	feed(t, p, "1", "r", 1, []float64{0.9, 0.5, 0.2, 0.7}) // a NaN-free window
	feed(t, p, "1", "s", 1, []float64{0.9, nan(), 0.2, 0.7})
	require.NoError(t, m.Flush(context.Background()))
	require.NoError(t, hook.Shutdown(context.Background()))
	require.Len(t, deliveries, 1)
	d := <-deliveries
	assert.Equal(t, quality.AlertRaised, d.a.Kind)
	assert.Equal(t, []string{"invalid"}, d.a.Raised)
	assert.Equal(t, d.a.IdempotencyKey(), d.key)
	assert.Equal(t, webhook.Stats{Sent: 1}, hook.Stats())
}

func nan() float64 { return math.NaN() }

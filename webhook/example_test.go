package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/servekit/servekit/drift"
	"github.com/servekit/servekit/webhook"
)

// A retraining pipeline's receiver trusts an alert only once its signature
// checks out with the key it shares with the Sender.
func ExampleVerify() {
	key := []byte("shared secret")
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := webhook.Verify(key, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var a drift.Alert
		_ = json.Unmarshal(body, &a)
		fmt.Println("verified:", a.Kind, a.Model, "v"+a.Version, a.Raised)
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	wh, _ := webhook.New(srv.URL, webhook.WithSigningKey(key))
	wh.Send(drift.Alert{Kind: drift.AlertRaised, Model: "fraud", Version: "2", Raised: []string{"amount"}})
	_ = wh.Shutdown(context.Background())
	// Output: verified: raised fraud v2 [amount]
}

package remote_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/remote"
	"github.com/servekit/servekit/serving/servingtest"
)

// TestTLS: https and grpcs targets through a caller's client (here the
// test server's, which trusts its certificate), sharing its connections.
func TestTLS(t *testing.T) {
	h := httpapi.New()
	if err := h.Handle("linear", servingtest.Linear(4)); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(grpcapi.New(h, grpcapi.WithFallback(h)))
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	ts.StartTLS()
	t.Cleanup(ts.Close)
	hc := ts.Client()
	t.Cleanup(hc.CloseIdleConnections)
	host := strings.TrimPrefix(ts.URL, "https://")
	for _, tg := range []string{"https://" + host, "grpcs://" + host} {
		p := dial(t, tg, "linear", remote.WithHTTPClient(hc))
		resp, err := p.Predict(context.Background(), servingtest.Rows(4, 1, 0))
		if err != nil || len(resp.Outputs) != 1 {
			t.Errorf("%s: %+v %v", tg, resp, err)
		}
	}
	// Without the caller's client the server's certificate is not trusted.
	if _, err := remote.Dial(context.Background(), "grpcs://"+host, "linear"); err == nil {
		t.Error("an untrusted certificate: no error")
	}
}

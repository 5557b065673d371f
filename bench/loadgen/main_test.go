package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLoadgen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-url", srv.URL, "-c", "4", "-d", "5s", "-warmup", "0", "-max-requests", "50", "-name", "t"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "requests=50 errors=0") {
		t.Errorf("output %q", out.String())
	}
	for _, bad := range []string{"http://example.com/", "http://10.0.0.1/", "ftp://127.0.0.1/"} {
		if err := run(context.Background(), []string{"-url", bad}, &out); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestLoadgenGRPC(t *testing.T) {
	rest := httpapi.New()
	rest.Handle("fraud", servingtest.Static())
	srv := httptest.NewUnstartedServer(grpcapi.New(rest))
	srv.Config.Protocols = grpcapi.Protocols()
	srv.Start()
	defer srv.Close()
	for _, extra := range [][]string{nil, {"-typed", "-conns", "2"}} {
		var out bytes.Buffer
		args := append([]string{"-grpc", "-url", srv.URL, "-c", "4", "-d", "5s", "-warmup", "0", "-max-requests", "50", "-name", "g"}, extra...)
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatal(err)
		}
		// The static model answers with no outputs: every call is an error
		// the generator must see and count.
		if !strings.Contains(out.String(), "requests=0 errors=50") || !strings.Contains(out.String(), "answer without outputs") {
			t.Errorf("output %q", out.String())
		}
	}
	rest.Remove("fraud", "")
	if err := rest.Handle("fraud", servingtest.Func(echoFeatures)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-grpc", "-url", srv.URL, "-c", "4", "-d", "5s", "-warmup", "0", "-max-requests", "50"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "requests=50 errors=0") {
		t.Errorf("output %q", out.String())
	}
	if err := run(context.Background(), []string{"-grpc", "-url", "http://10.0.0.1:80"}, &out); err == nil {
		t.Error("non-loopback gRPC target accepted")
	}
}

func echoFeatures(_ context.Context, req *serving.Request) (*serving.Response, error) {
	return &serving.Response{Outputs: req.Inputs}, nil
}

func TestFraudBody(t *testing.T) {
	if got := fraudBody(2); !strings.Contains(got, `"shape":[2,8]`) || strings.Count(got, "-0.4") != 2 {
		t.Errorf("fraudBody(2) = %s", got)
	}
}

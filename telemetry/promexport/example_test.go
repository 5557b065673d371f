package promexport_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
	"github.com/servekit/servekit/telemetry/promexport"
)

// Serve the metrics of an instrumented model to Prometheus. A binary keeps
// the defaults (global providers, runtime metrics); the example opts out so
// that it leaves no global state behind.
func ExampleSetup() {
	ctx := context.Background()
	exp, err := promexport.Setup(ctx, promexport.WithoutGlobal(), promexport.WithoutRuntime())
	if err != nil {
		panic(err)
	}
	defer exp.Shutdown(ctx)

	model := serving.Chain(telemetry.Middleware(telemetry.WithMeterProvider(exp.MeterProvider)))(servingtest.Linear(2))
	defer serving.Close(model)
	model.Predict(ctx, servingtest.Rows(2, 1, 0))

	srv := httptest.NewServer(exp.Handler()) // mux.Handle("GET /metrics", exp.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "servekit_requests_total{") {
			fmt.Print(line)
		}
	}
	// Output:
	// servekit_requests_total{code="ok",model="linear",otel_scope_name="github.com/servekit/servekit/telemetry",otel_scope_schema_url="",otel_scope_version="0.1.0",version=""} 1
}

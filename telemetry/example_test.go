package telemetry_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
)

// Wrap a model in the instrumentation and read what it recorded. A binary
// would pass an SDK MeterProvider fed to Prometheus (see promexport) or set
// the global one and call telemetry.Middleware() with no options.
func ExampleMiddleware() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	model := serving.Chain(telemetry.Middleware(telemetry.WithMeterProvider(mp)))(servingtest.Linear(2))
	defer serving.Close(model)

	req := servingtest.Rows(2, 1, 0)
	req.Version = "1"
	model.Predict(context.Background(), req)
	model.Predict(context.Background(), &serving.Request{Model: "linear", Version: "1"}) // no input

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.MetricRequests {
			for _, dp := range s.DataPoints {
				code, _ := dp.Attributes.Value("code")
				fmt.Println(m.Name, code.AsString(), dp.Value)
			}
		}
	}
	// Unordered output:
	// servekit.requests ok 1
	// servekit.requests invalid_argument 1
}

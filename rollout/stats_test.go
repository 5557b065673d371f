package rollout_test

import (
	"context"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/rollout/rollouttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// takes returns a version that takes the latency the request's ID names
// on clk, or fails with the code its Key names.
func takes(clk *rollouttest.Clock) serving.Predictor {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		d, _ := time.ParseDuration(req.ID)
		clk.Advance(d)
		if req.Key == "fail" {
			return nil, serving.Errorf(serving.Internal, "failed")
		}
		if req.Key == "bad" {
			return nil, serving.Errorf(serving.InvalidArgument, "bad input")
		}
		return &serving.Response{}, nil
	})
}

func TestStatsWindowAndPercentiles(t *testing.T) {
	clk := rollouttest.NewClock(epoch)
	r := newRouter(t, "m", quiet, rollout.WithClock(clk), rollout.WithStatsWindow(time.Minute))
	defer r.Close()
	mustPut(t, r, "1", takes(clk))
	send := func(n int, latency, key string) {
		for range n {
			r.Predict(context.Background(), &serving.Request{ID: latency, Key: key})
		}
	}
	send(97, "1ms", "")
	send(1, "100ms", "fail")
	send(2, "100ms", "bad")

	st := r.Status().Versions[0]
	if st.Requests != 100 || st.Failures != 1 || st.Errors[serving.Internal] != 1 || st.Errors[serving.InvalidArgument] != 2 {
		t.Errorf("counts %+v", st.Stats)
	}
	if st.WindowRequests != 100 || st.WindowFailures != 1 {
		t.Errorf("window counts %d/%d", st.WindowRequests, st.WindowFailures)
	}
	near := func(got, want time.Duration) bool {
		return math.Abs(float64(got-want)) <= 0.125*float64(want)
	}
	if !near(st.P50, time.Millisecond) || !near(st.P99, 100*time.Millisecond) {
		t.Errorf("p50 %v p99 %v, want about 1ms and 100ms", st.P50, st.P99)
	}
	if got := st.ErrorRate(); got != 0.01 {
		t.Errorf("error rate %v", got)
	}

	// A minute later the window has moved past them; the totals stay.
	clk.Advance(time.Minute + 10*time.Second)
	st = r.Status().Versions[0]
	if st.WindowRequests != 0 || st.P99 != 0 || st.Requests != 100 {
		t.Errorf("after the window: %+v", st.Stats)
	}
	send(10, "5ms", "")
	st = r.Status().Versions[0]
	if st.WindowRequests != 10 || !near(st.P99, 5*time.Millisecond) {
		t.Errorf("new window: %+v", st.Stats)
	}
}

func TestStatsSurviveHotReplace(t *testing.T) {
	r := newRouter(t, "m", quiet)
	defer r.Close()
	mustPut(t, r, "1", servingtest.Static())
	ask(t, r, keyed("a"))
	mustPut(t, r, "1", servingtest.Static())
	ask(t, r, keyed("b"))
	if n := r.Status().Versions[0].Requests; n != 2 {
		t.Errorf("requests after a hot replace: %d, want 2", n)
	}
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	clk := rollouttest.NewClock(epoch)
	r := newRouter(t, "fraud", quiet, rollout.WithMeterProvider(mp), rollout.WithClock(clk))
	mustPut(t, r, "1", takes(clk))
	mustPut(t, r, "2", takes(clk))
	if err := r.Start(rollout.Plan{Canary: "2", Steps: []rollout.Step{{Weight: 25, Hold: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.Predict(context.Background(), &serving.Request{ID: "2ms", Version: "2"})
	}
	r.Predict(context.Background(), &serving.Request{ID: "2ms", Version: "2", Key: "fail"})

	got := collect(t, reader)
	want := []struct {
		name  string
		attrs []attribute.KeyValue
		value float64
	}{
		{rollout.MetricRequests, mv("2", attribute.String("code", "ok")), 3},
		{rollout.MetricRequests, mv("2", attribute.String("code", "internal")), 1},
		{rollout.MetricWeight, mv("1"), 75},
		{rollout.MetricWeight, mv("2"), 25},
		{rollout.MetricInflight, mv("2"), 0},
		{rollout.MetricFallbacks, mv("1"), 0},
		{rollout.MetricPlanStep, mv("2", attribute.String("state", "running")), 0},
	}
	for _, w := range want {
		v, ok := got[key(w.name, attribute.NewSet(w.attrs...))]
		if !ok || v != w.value {
			t.Errorf("%s %v = %v (found %v), want %v", w.name, w.attrs, v, ok, w.value)
		}
	}
	p99, ok := got[key(rollout.MetricLatency, attribute.NewSet(mv("2", attribute.String("quantile", "0.99"))...))]
	if !ok || math.Abs(p99-0.002) > 0.00025 {
		t.Errorf("latency p99 %v (found %v), want about 0.002", p99, ok)
	}
	// What Status says, the metrics say.
	if st := r.Status().Versions[1]; float64(st.P99.Seconds()) != p99 {
		t.Errorf("Status p99 %v, metric %v", st.P99.Seconds(), p99)
	}

	// Closed, the router exports nothing more.
	r.Close()
	if got := collect(t, reader); len(got) != 0 {
		t.Errorf("metrics after Close: %v", got)
	}
}

func mv(version string, more ...attribute.KeyValue) []attribute.KeyValue {
	return append([]attribute.KeyValue{attribute.String("model", "fraud"), attribute.String("version", version)}, more...)
}

func key(name string, s attribute.Set) string {
	return name + "|" + s.Encoded(attribute.DefaultEncoder())
}

// collect returns every data point by name and attributes.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != rollout.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = p.Value
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, d)
			}
		}
	}
	return out
}

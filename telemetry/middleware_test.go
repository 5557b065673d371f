package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness records into a ManualReader and a SpanRecorder, never the globals.
type harness struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	opts   []telemetry.Option
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	h.opts = []telemetry.Option{telemetry.WithMeterProvider(mp), telemetry.WithTracerProvider(tp)}
	return h
}

func (h *harness) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func attr(s attribute.Set, k string) string {
	v, _ := s.Value(attribute.Key(k))
	return v.AsString()
}

// byCode returns a Predictor that answers requests whose ID names a code
// with an error of that code, and the others with a fixed response.
func byCode() serving.Predictor {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		switch req.ID {
		case "bad":
			return nil, serving.Errorf(serving.InvalidArgument, "test: bad input")
		case "busy":
			return nil, serving.ErrOverloaded
		case "boom":
			return nil, errors.New("test: plain error")
		}
		return &serving.Response{ID: req.ID, Model: req.Model, Version: "v2"}, nil
	})
}

func TestMetricsByCode(t *testing.T) {
	h := newHarness(t)
	p := telemetry.Middleware(h.opts...)(byCode())
	for _, id := range []string{"a", "b", "bad", "busy", "busy", "boom"} {
		_, _ = p.Predict(context.Background(), &serving.Request{ID: id, Model: "m", Version: "v1"})
	}
	got := h.collect(t)

	counts := map[[2]string]int64{} // (version, code) → count
	sum, ok := got[telemetry.MetricRequests].(metricdata.Sum[int64])
	if !ok || !sum.IsMonotonic {
		t.Fatalf("%s: %T, want a monotonic Sum[int64]", telemetry.MetricRequests, got[telemetry.MetricRequests])
	}
	for _, dp := range sum.DataPoints {
		if attr(dp.Attributes, "model") != "m" {
			t.Errorf("model attribute %q, want m", attr(dp.Attributes, "model"))
		}
		counts[[2]string{attr(dp.Attributes, "version"), attr(dp.Attributes, "code")}] = dp.Value
	}
	want := map[[2]string]int64{
		{"v2", "ok"}:               2, // labelled with the version that answered
		{"v1", "invalid_argument"}: 1, {"v1", "resource_exhausted"}: 2, {"v1", "internal"}: 1,
	}
	if len(counts) != len(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("count %v = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}

	hist, ok := got[telemetry.MetricDuration].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: %T, want Histogram[float64]", telemetry.MetricDuration, got[telemetry.MetricDuration])
	}
	var n uint64
	for _, dp := range hist.DataPoints {
		n += dp.Count
		if dp.Count > 0 && dp.Sum <= 0 {
			t.Errorf("duration sum %v for %d requests", dp.Sum, dp.Count)
		}
		if want := telemetry.DurationBuckets(); len(dp.Bounds) != len(want) || dp.Bounds[0] != want[0] {
			t.Errorf("bounds %v, want %v", dp.Bounds, want)
		}
	}
	if n != 6 {
		t.Errorf("duration count %d, want 6", n)
	}

	inflight, ok := got[telemetry.MetricInflight].(metricdata.Sum[int64])
	if !ok || inflight.IsMonotonic {
		t.Fatalf("%s: %T, want a non-monotonic Sum[int64]", telemetry.MetricInflight, got[telemetry.MetricInflight])
	}
	for _, dp := range inflight.DataPoints {
		if dp.Value != 0 {
			t.Errorf("inflight %v = %d after all returned, want 0", dp.Attributes, dp.Value)
		}
	}
}

func TestInflightWhileWaiting(t *testing.T) {
	h := newHarness(t)
	entered, release := make(chan struct{}), make(chan struct{})
	p := telemetry.New(servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		entered <- struct{}{}
		<-release
		return &serving.Response{}, nil
	}), h.opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.Predict(context.Background(), &serving.Request{Model: "m"})
	}()
	<-entered
	value := func() int64 {
		s := h.collect(t)[telemetry.MetricInflight].(metricdata.Sum[int64])
		return s.DataPoints[0].Value
	}
	if v := value(); v != 1 {
		t.Errorf("inflight during a request: %d, want 1", v)
	}
	close(release)
	<-done
	if v := value(); v != 0 {
		t.Errorf("inflight after it: %d, want 0", v)
	}
}

func TestResultsUnchanged(t *testing.T) {
	h := newHarness(t)
	want := &serving.Response{ID: "x"}
	wantErr := serving.Errorf(serving.Unavailable, "test: down")
	for _, tc := range []struct {
		resp *serving.Response
		err  error
	}{{want, nil}, {nil, wantErr}, {want, wantErr}} {
		p := telemetry.New(servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
			return tc.resp, tc.err
		}), h.opts...)
		resp, err := p.Predict(context.Background(), &serving.Request{})
		if resp != tc.resp || err != tc.err {
			t.Errorf("got (%p, %v), want (%p, %v)", resp, err, tc.resp, tc.err)
		}
	}
}

func TestSpans(t *testing.T) {
	h := newHarness(t)
	p := telemetry.Middleware(h.opts...)(byCode())
	if _, err := p.Predict(context.Background(), &serving.Request{ID: "ok-1", Model: "m", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Predict(context.Background(), &serving.Request{ID: "busy", Model: "m", Version: "v1"}); err == nil {
		t.Fatal("want an error")
	}
	spans := h.spans.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	okSpan, errSpan := spans[0], spans[1]
	if okSpan.Name() != telemetry.SpanName {
		t.Errorf("span name %q, want %q", okSpan.Name(), telemetry.SpanName)
	}
	attrs := attribute.NewSet(okSpan.Attributes()...)
	for k, v := range map[string]string{"model": "m", "version": "v1", "request.id": "ok-1"} {
		if got := attr(attrs, k); got != v {
			t.Errorf("span attribute %s = %q, want %q", k, got, v)
		}
	}
	if okSpan.Status().Code != codes.Unset {
		t.Errorf("status of a success: %v, want Unset", okSpan.Status())
	}
	if errSpan.Status().Code != codes.Error {
		t.Errorf("status of a failure: %v, want Error", errSpan.Status())
	}
	if got := attr(attribute.NewSet(errSpan.Attributes()...), "code"); got != "resource_exhausted" {
		t.Errorf("code attribute %q, want resource_exhausted", got)
	}
	if len(errSpan.Events()) != 1 || errSpan.Events()[0].Name != "exception" {
		t.Errorf("events %v, want one exception", errSpan.Events())
	}
}

// A W3C traceparent extracted into ctx (as the HTTP handler does) becomes the
// parent of servekit.predict, and spans started below from ctx become its
// children.
func TestTraceContextPropagation(t *testing.T) {
	h := newHarness(t)
	hdr := http.Header{}
	hdr.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(hdr))

	var inner trace.SpanContext
	p := telemetry.New(servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		inner = trace.SpanContextFromContext(ctx)
		return &serving.Response{}, nil
	}), h.opts...)
	if _, err := p.Predict(ctx, &serving.Request{Model: "m"}); err != nil {
		t.Fatal(err)
	}
	spans := h.spans.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if got := s.Parent().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s, want the caller's", got)
	}
	if got := s.Parent().SpanID().String(); got != "00f067aa0ba902b7" || !s.Parent().IsRemote() {
		t.Errorf("parent span %s (remote %v), want the caller's remote span", got, s.Parent().IsRemote())
	}
	if inner.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("ctx below carries span %s, want servekit.predict %s", inner.SpanID(), s.SpanContext().SpanID())
	}
}

func TestPanicEndsSpanAndInflight(t *testing.T) {
	h := newHarness(t)
	p := telemetry.New(servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		panic("test: backend bug")
	}), h.opts...)
	func() {
		defer func() {
			if r := recover(); r != "test: backend bug" {
				t.Errorf("recovered %v, want the original panic", r)
			}
		}()
		_, _ = p.Predict(context.Background(), &serving.Request{Model: "m"})
	}()
	got := h.collect(t)
	if v := got[telemetry.MetricInflight].(metricdata.Sum[int64]).DataPoints[0].Value; v != 0 {
		t.Errorf("inflight after a panic: %d, want 0", v)
	}
	dp := got[telemetry.MetricRequests].(metricdata.Sum[int64]).DataPoints[0]
	if attr(dp.Attributes, "code") != "internal" {
		t.Errorf("code of a panic: %q, want internal", attr(dp.Attributes, "code"))
	}
	if spans := h.spans.Ended(); len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Errorf("spans after a panic: %v, want one with status Error", spans)
	}
}

func TestConformance(t *testing.T) {
	h := newHarness(t)
	mw := telemetry.Middleware(h.opts...)
	servingtest.Conformance(t, servingtest.Config{
		New:           func(*testing.T) serving.Predictor { return mw(servingtest.Linear(3)) },
		Request:       func() *serving.Request { return servingtest.Rows(3, 2, 1) },
		Deterministic: true,
	})
}

func TestSeesThrough(t *testing.T) {
	inner := servingtest.Linear(2)
	p := telemetry.Middleware()(inner)
	if md, ok := serving.MetadataOf(p); !ok || md.Name != "linear" {
		t.Errorf("MetadataOf through the middleware: %v %v", md, ok)
	}
	if err := serving.Close(p); err != nil {
		t.Fatal(err)
	}
	if inner.Ready() || serving.IsReady(p) {
		t.Error("serving.Close did not reach the wrapped model")
	}
}

// Many (model, version) pairs: each keeps its own series; past the cache's
// bound they are still counted right.
func TestManyModels(t *testing.T) {
	h := newHarness(t)
	p := telemetry.Middleware(h.opts...)(servingtest.Static())
	const models = 600
	for i := range models {
		req := &serving.Request{Model: "m" + time.Duration(i).String()}
		_, _ = p.Predict(context.Background(), req)
		_, _ = p.Predict(context.Background(), req)
	}
	sum := h.collect(t)[telemetry.MetricRequests].(metricdata.Sum[int64])
	if len(sum.DataPoints) != models {
		t.Fatalf("%d series, want %d", len(sum.DataPoints), models)
	}
	for _, dp := range sum.DataPoints {
		if dp.Value != 2 {
			t.Errorf("%v: %d, want 2", dp.Attributes, dp.Value)
		}
	}
}

// Past the cache's bound (2000 pairs, the SDK's default cardinality limit)
// requests are still counted, and in-flight ones go to a series marked
// otel.metric.overflow.
func TestOverflow(t *testing.T) {
	h := newHarness(t)
	p := telemetry.Middleware(h.opts...)(servingtest.Static())
	const models = 2010
	for i := range models {
		_, _ = p.Predict(context.Background(), &serving.Request{Model: fmt.Sprint("m", i)})
	}
	got := h.collect(t)
	// The SDK caps series too (2000 by default, the last one its overflow),
	// so count requests, not series.
	var total int64
	for _, dp := range got[telemetry.MetricRequests].(metricdata.Sum[int64]).DataPoints {
		total += dp.Value
	}
	if total != models {
		t.Errorf("%d requests counted, want %d", total, models)
	}
	var overflow bool
	for _, dp := range got[telemetry.MetricInflight].(metricdata.Sum[int64]).DataPoints {
		if v, ok := dp.Attributes.Value("otel.metric.overflow"); ok && v.AsBool() {
			overflow = true
		}
		if dp.Value != 0 {
			t.Errorf("inflight %v = %d, want 0", dp.Attributes, dp.Value)
		}
	}
	if !overflow {
		t.Error("no overflow in-flight series")
	}
}

// A Code serving does not define is counted, under code="unknown", in both
// the counter and the histogram, and the error still reaches the caller.
func TestUnknownCode(t *testing.T) {
	h := newHarness(t)
	wantErr := serving.Errorf(serving.Code(42), "test: a caller's own code")
	p := telemetry.New(servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) {
		return nil, wantErr
	}), h.opts...)
	for range 3 {
		if _, err := p.Predict(context.Background(), &serving.Request{Model: "m"}); err != wantErr {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
	}
	got := h.collect(t)
	sum := got[telemetry.MetricRequests].(metricdata.Sum[int64])
	if len(sum.DataPoints) != 1 || attr(sum.DataPoints[0].Attributes, "code") != "unknown" || sum.DataPoints[0].Value != 3 {
		t.Errorf("servekit.requests %+v, want 3 with code unknown", sum.DataPoints)
	}
	hist := got[telemetry.MetricDuration].(metricdata.Histogram[float64])
	if len(hist.DataPoints) != 1 || attr(hist.DataPoints[0].Attributes, "code") != "unknown" || hist.DataPoints[0].Count != 3 {
		t.Errorf("servekit.request.duration %+v, want 3 with code unknown", hist.DataPoints)
	}
}

// The rule on serving.Middleware: the instrumenting layer owns the model it
// wraps, and closing it closes the model.
func TestCloseClosesTheModel(t *testing.T) {
	servingtest.Ownership(t, telemetry.Middleware(), nil)
	model := servingtest.Linear(2)
	if err := telemetry.New(model).Close(); err != nil || model.Closes() != 1 {
		t.Errorf("Close: %v, model closed %d times, want 1", err, model.Closes())
	}
}

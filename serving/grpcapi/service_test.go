package grpcapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
	"github.com/servekit/servekit/telemetry"
)

func TestHealthAndMetadata(t *testing.T) {
	model := servingtest.Linear(2)
	rest := models(t, "linear", model, httpapi.Version("3"))
	c := serve(t, grpcapi.New(rest, grpcapi.WithServerInfo("srv", "9.9")))
	ctx := context.Background()

	live, err := c.ServerLive(ctx, connect.NewRequest(&pb.ServerLiveRequest{}))
	if err != nil || !live.Msg.Live {
		t.Fatalf("ServerLive = %v, %v", live, err)
	}
	md, err := c.ServerMetadata(ctx, connect.NewRequest(&pb.ServerMetadataRequest{}))
	if err != nil || md.Msg.Name != "srv" || md.Msg.Version != "9.9" || len(md.Msg.Extensions) == 0 {
		t.Fatalf("ServerMetadata = %v, %v", md, err)
	}
	mm, err := c.ModelMetadata(ctx, connect.NewRequest(&pb.ModelMetadataRequest{Name: "linear"}))
	if err != nil {
		t.Fatal(err)
	}
	if m := mm.Msg; m.Name != "linear" || m.Platform != "servingtest" || len(m.Versions) != 1 || m.Versions[0] != "3" ||
		len(m.Inputs) != 1 || m.Inputs[0].Name != "x" || m.Inputs[0].Datatype != "FP32" || !slicesEqual(m.Inputs[0].Shape, []int64{-1, 2}) ||
		len(m.Outputs) != 1 || m.Outputs[0].Name != "y" {
		t.Errorf("ModelMetadata = %v", m)
	}
	_, err = c.ModelMetadata(ctx, connect.NewRequest(&pb.ModelMetadataRequest{Name: "linear", Version: "4"}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = c.ModelReady(ctx, connect.NewRequest(&pb.ModelReadyRequest{Name: "nope"}))
	wantCode(t, err, connect.CodeNotFound)

	ready := func() (server, m bool) {
		t.Helper()
		s, err := c.ServerReady(ctx, connect.NewRequest(&pb.ServerReadyRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.ModelReady(ctx, connect.NewRequest(&pb.ModelReadyRequest{Name: "linear", Version: "3"}))
		if err != nil {
			t.Fatal(err)
		}
		return s.Msg.Ready, r.Msg.Ready
	}
	if s, m := ready(); !s || !m {
		t.Errorf("ready before Close: server %v, model %v", s, m)
	}
	model.Close()
	if s, m := ready(); s || m {
		t.Errorf("ready after Close: server %v, model %v", s, m)
	}
	_, err = infer(c, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)))
	wantCode(t, err, connect.CodeUnavailable)
}

// TestVersionAndKey: model_version, x-model-version, the routing_key
// parameter and x-routing-key reach the Predictor as httpapi passes them.
func TestVersionAndKey(t *testing.T) {
	v1, v2 := servingtest.NewRecorder(echo()), servingtest.NewRecorder(echo())
	rest := models(t, "m", v1, httpapi.Version("1"))
	if err := rest.Handle("m", v2, httpapi.Version("2")); err != nil {
		t.Fatal(err)
	}
	c := serve(t, grpcapi.New(rest))
	x, _ := serving.NewTensor("x", []int64{1}, []float32{1})
	msg := func(version string, params map[string]*pb.InferParameter) *pb.ModelInferRequest {
		m := grpcapi.EncodeRequest(&serving.Request{Model: "m", Version: version, Inputs: []serving.Tensor{x}})
		m.Parameters = params
		return m
	}
	key := map[string]*pb.InferParameter{"routing_key": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "param-key"}}}
	cases := []struct {
		name             string
		msg              *pb.ModelInferRequest
		hdr              []string
		rec              *servingtest.Recorder
		version, wantKey string
	}{
		{"default", msg("", nil), nil, v1, "1", ""},
		{"model_version", msg("2", nil), nil, v2, "2", ""},
		{"header version", msg("", nil), []string{"x-model-version", "2"}, v2, "2", ""},
		{"field wins over header", msg("1", nil), []string{"x-model-version", "2"}, v1, "1", ""},
		{"header key", msg("", nil), []string{"x-routing-key", "user-7"}, v1, "1", "user-7"},
		{"parameter key wins", msg("", key), []string{"x-routing-key", "user-7"}, v1, "1", "param-key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.rec.Requests())
			resp, err := infer(c, tc.msg, tc.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			reqs := tc.rec.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("the request did not reach version %s", tc.version)
			}
			got := reqs[len(reqs)-1]
			if got.Version != tc.version || got.Key != tc.wantKey || got.Model != "m" {
				t.Errorf("Predictor saw model %q version %q key %q, want m %q %q", got.Model, got.Version, got.Key, tc.version, tc.wantKey)
			}
			if resp.ModelVersion != tc.version || resp.ModelName != "m" {
				t.Errorf("answer names %s/%s", resp.ModelName, resp.ModelVersion)
			}
		})
	}
	_, err := infer(c, msg("", nil), "x-model-version", "7")
	wantCode(t, err, connect.CodeNotFound)
}

func TestParametersAndOutputs(t *testing.T) {
	rec := servingtest.NewRecorder(echo())
	c := client(t, "m", rec)
	a, _ := serving.NewTensor("a", []int64{1}, []int32{1})
	b, _ := serving.NewTensor("b", []int64{1}, []int64{2})
	msg := grpcapi.EncodeRequest(&serving.Request{Model: "m", ID: "req-1", Inputs: []serving.Tensor{a, b}, Outputs: []string{"b", "a"},
		Params: serving.Params{"priority": int64(2), "cache_bypass": true, "ratio": 0.5, "tag": "x"}})
	msg.Parameters["big"] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: 7}}
	resp, err := infer(c, msg)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.Requests()[0]
	if p, _ := got.Params.Int("priority"); p != 2 {
		t.Errorf("priority %v", got.Params["priority"])
	}
	if v, _ := got.Params.Bool("cache_bypass"); !v || got.Params["ratio"] != 0.5 || got.Params["tag"] != "x" || got.Params["big"] != int64(7) {
		t.Errorf("params %v", got.Params)
	}
	if resp.Id != "req-1" || len(resp.Outputs) != 2 || resp.Outputs[0].Name != "b" || resp.Outputs[1].Name != "a" {
		t.Errorf("answer id %q outputs %v", resp.Id, resp.Outputs)
	}
	if p := resp.Parameters["priority"].GetInt64Param(); p != 2 {
		t.Errorf("response parameters %v", resp.Parameters)
	}
}

// TestDeadlines: the gRPC deadline and the timeout parameter bound the
// Predictor's context; a slow model is DeadlineExceeded.
func TestDeadlines(t *testing.T) {
	var seen time.Duration
	probe := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		if d, ok := ctx.Deadline(); ok {
			seen = time.Until(d)
		}
		return &serving.Response{Outputs: req.Inputs}, nil
	})
	c := client(t, "m", probe)
	msg := grpcapi.EncodeRequest(servingtest.Rows(1, 1, 0))
	msg.ModelName = "m"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.ModelInfer(ctx, connect.NewRequest(msg)); err != nil {
		t.Fatal(err)
	}
	if seen <= time.Second || seen > 5*time.Second {
		t.Errorf("Predictor's budget %v, want the client's 5s", seen)
	}
	msg.Parameters = map[string]*pb.InferParameter{"timeout": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 200_000}}}
	if _, err := c.ModelInfer(ctx, connect.NewRequest(msg)); err != nil {
		t.Fatal(err)
	}
	if seen <= 0 || seen > 200*time.Millisecond {
		t.Errorf("Predictor's budget %v, want the parameter's 200ms", seen)
	}

	slow := client(t, "linear", servingtest.Slow(time.Minute, servingtest.Linear(2)), grpcapi.WithMaxTimeout(50*time.Millisecond))
	_, err := infer(slow, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)))
	wantCode(t, err, connect.CodeDeadlineExceeded)
}

func TestMaxMessageBytes(t *testing.T) {
	c := client(t, "linear", servingtest.Linear(2), grpcapi.WithMaxMessageBytes(1024))
	_, err := infer(c, grpcapi.EncodeRequest(servingtest.Rows(2, 200, 0)))
	wantCode(t, err, connect.CodeResourceExhausted)
	if _, err := infer(c, grpcapi.EncodeRequest(servingtest.Rows(2, 10, 0))); err != nil {
		t.Errorf("small request: %v", err)
	}
}

// TestTraceContext: a traceparent sent as gRPC metadata parents the
// servekit.predict span, through both servers.
func TestTraceContext(t *testing.T) {
	old := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(old)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer tp.Shutdown(context.Background())
	for _, c := range clients(t, models(t, "linear", telemetry.New(servingtest.Linear(2), telemetry.WithTracerProvider(tp)))) {
		t.Run(c.name, func(t *testing.T) { traceContext(t, c, sr) })
	}
}

func traceContext(t *testing.T, c inferencepbconnect.GRPCInferenceServiceClient, sr *tracetest.SpanRecorder) {
	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	before := len(sr.Ended())
	if _, err := infer(c, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)), "traceparent", "00-"+traceID+"-"+parent+"-01"); err != nil {
		t.Fatal(err)
	}
	spans := sr.Ended()[before:]
	if len(spans) != 1 || spans[0].Name() != telemetry.SpanName {
		t.Fatalf("spans %v", spans)
	}
	if got := spans[0].SpanContext().TraceID().String(); got != traceID {
		t.Errorf("trace id %s, want %s", got, traceID)
	}
	if got := spans[0].Parent().SpanID().String(); got != parent || !spans[0].Parent().IsRemote() {
		t.Errorf("parent %s (remote %v), want %s", got, spans[0].Parent().IsRemote(), parent)
	}
}

// TestStream: ModelStreamInfer answers in order, reports a bad request in
// error_message and goes on.
func TestStream(t *testing.T) {
	c := client(t, "linear", servingtest.Linear(2))
	s := c.ModelStreamInfer(context.Background())
	bad := grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0))
	bad.Inputs[0].Name = "z"
	msgs := []*pb.ModelInferRequest{grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0)), bad, grpcapi.EncodeRequest(servingtest.Rows(2, 2, 10))}
	for i, m := range msgs {
		m.Id = string(rune('a' + i))
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseRequest(); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		r, err := s.Receive()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if i == 1 {
			if !strings.Contains(r.ErrorMessage, `"z"`) || r.InferResponse != nil {
				t.Errorf("answer to the bad request: %v", r)
			}
			continue
		}
		if r.ErrorMessage != "" || r.InferResponse.GetId() != msgs[i].Id {
			t.Fatalf("answer %d: %v", i, r)
		}
		out, err := grpcapi.DecodeResponse(r.InferResponse)
		if err != nil {
			t.Fatal(err)
		}
		y, _ := serving.Values[float32](out.Outputs[0])
		if want := float32(2*float32(i*5)) + 1; y[0] != want { // rows start at 0 and 10
			t.Errorf("answer %d: y[0] = %v, want %v", i, y[0], want)
		}
	}
	if _, err := s.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last answer: %v", err)
	}
	if err := s.CloseResponse(); err != nil {
		t.Error(err)
	}
}

// TestOneListener: WithFallback serves REST beside gRPC; gRPC-Web and the
// Connect protocol over HTTP/1.1 reach the same service.
func TestOneListener(t *testing.T) {
	rest := models(t, "linear", servingtest.Linear(2))
	h := grpcapi.New(rest, grpcapi.WithFallback(rest))
	c := serve(t, h)
	if _, err := infer(c, grpcapi.EncodeRequest(servingtest.Rows(2, 1, 0))); err != nil {
		t.Fatal(err)
	}
	w := httptestRecorder(h, "POST", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"data":[3,5]`) {
		t.Errorf("REST through the fallback: %d %s", w.Code, w.Body)
	}
	for name, opt := range map[string]connect.ClientOption{"gRPC-Web": connect.WithGRPCWeb(), "Connect": connect.WithProtoJSON()} {
		web := inferencepbconnect.NewGRPCInferenceServiceClient(http.DefaultClient, "http://"+serveAddr(t, h), opt)
		resp, err := web.ModelInfer(context.Background(), connect.NewRequest(grpcapi.EncodeRequest(servingtest.Rows(2, 1, 1))))
		if err != nil {
			t.Fatalf("%s over HTTP/1.1: %v", name, err)
		}
		out, _ := grpcapi.DecodeResponse(resp.Msg)
		if y, _ := serving.Values[float32](out.Outputs[0]); len(y) != 2 || y[0] != 3 {
			t.Errorf("%s answer %v", name, y)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	w = httptestRecorder(grpcapi.New(rest), "GET", "/v2/health/ready", "")
	if w.Code != http.StatusNotFound {
		t.Errorf("REST path without a fallback: %d", w.Code)
	}
	w = httptestRecorder(h, "POST", grpcapi.Path+"ServerLive", `{}`, "Content-Type", "application/json")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"live":true`) {
		t.Errorf("Connect JSON over HTTP/1.1: %d %s", w.Code, w.Body)
	}
}

func TestPanicIsInternal(t *testing.T) {
	c := client(t, "m", servingtest.Func(func(context.Context, *serving.Request) (*serving.Response, error) { panic("model bug") }))
	_, err := infer(c, grpcapi.EncodeRequest(&serving.Request{Model: "m"}))
	wantCode(t, err, connect.CodeInternal)
	if strings.Contains(err.Error(), "model bug") {
		t.Errorf("panic value leaked to the client: %v", err)
	}
}

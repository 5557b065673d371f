package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestV1(t *testing.T) {
	h, _ := linearHandler(t)
	for _, c := range []struct{ path, body, want string }{
		{"/v1/models/linear:predict", `{"instances":[[1,2],[3,4]]}`, `{"predictions":[[3,5],[7,9]]}`},
		{"/v1/models/linear:predict", `{"instances":[{"x":[1,2]},{"x":[3,4]}]}`, `{"predictions":[[3,5],[7,9]]}`},
		{"/v1/models/linear:predict", `{"inputs":[[1,2],[3,4]]}`, `{"outputs":[[3,5],[7,9]]}`},
		{"/v1/models/linear:predict", `{"inputs":{"x":[[1,2]]}}`, `{"outputs":[[3,5]]}`},
	} {
		w := call(t, h, "POST", c.path, c.body)
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != c.want {
			t.Errorf("%s %s: %d %s, want %s", c.path, c.body, w.Code, w.Body, c.want)
		}
	}
	_ = h.Handle("linear", servingtest.Linear(2), httpapi.Version("3"))
	if w := call(t, h, "POST", "/v1/models/linear/versions/3:predict", `{"instances":[[0,0]]}`); w.Code != 200 || !strings.Contains(w.Body.String(), "[[1,1]]") {
		t.Errorf("versioned V1: %d %s", w.Code, w.Body)
	}
	if w := call(t, h, "GET", "/v1/models/linear", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"ready":true`) {
		t.Errorf("V1 status: %d %s", w.Code, w.Body)
	}
	wantError(t, call(t, h, "POST", "/v1/models/linear:classify", `{}`), 501, "classify")
	wantError(t, call(t, h, "POST", "/v1/models/linear", `{}`), 404, "predict")
	wantError(t, call(t, h, "POST", "/v1/models/linear:predict", `{}`), 400, "instances")
	wantError(t, call(t, h, "POST", "/v1/models/linear:predict", `{"instances":[[1,2],[3]]}`), 400, "")
	wantError(t, call(t, h, "POST", "/v1/models/linear:predict", `{"instances":[[1,2],{"x":[1,2]}]}`), 400, "mix")
	wantError(t, call(t, h, "POST", "/v1/models/nope:predict", `{"instances":[[1,2]]}`), 404, "unknown model")
}

func TestV1MultiOutputAndStrings(t *testing.T) {
	h := httpapi.New()
	_ = h.Handle("echo", echo()) // no metadata: types are guessed
	w := call(t, h, "POST", "/v1/models/echo:predict", `{"instances":[{"a":"x","b":1.5},{"a":"y","b":2}]}`)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"predictions":[{"a":"x","b":1.5},{"a":"y","b":2}]}` {
		t.Errorf("multi-output rows: %d %s", w.Code, w.Body)
	}
	w = call(t, h, "POST", "/v1/models/echo:predict", `{"inputs":{"a":[true,false]}}`)
	if strings.TrimSpace(w.Body.String()) != `{"outputs":[true,false]}` {
		t.Errorf("columnar bool: %s", w.Body)
	}
}

func TestSageMakerVertexAndCustomRoutes(t *testing.T) {
	t.Setenv("AIP_HEALTH_ROUTE", "/vx/health")
	t.Setenv("AIP_PREDICT_ROUTE", "/vx/predict")
	t.Setenv("AIP_HTTP_PORT", "9999")
	m := servingtest.Linear(2)
	h := httpapi.New(httpapi.SageMaker("linear"), httpapi.Vertex("linear"),
		httpapi.WithLiveRoute("/azure/live"), httpapi.WithReadyRoute("/azure/ready"),
		httpapi.WithPredictRoute("/score", "linear"), httpapi.WithInferRoute("/infer", "linear"))
	_ = h.Handle("linear", m)
	if httpapi.VertexPort("8080") != "9999" {
		t.Error("VertexPort ignores AIP_HTTP_PORT")
	}
	for _, p := range []string{"/ping", "/vx/health", "/azure/live", "/azure/ready"} {
		if w := call(t, h, "GET", p, ""); w.Code != 200 {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
	for _, p := range []string{"/invocations", "/vx/predict", "/score"} {
		if w := call(t, h, "POST", p, `{"instances":[[1,2]]}`); w.Code != 200 || !strings.Contains(w.Body.String(), "[[3,5]]") {
			t.Errorf("POST %s: %d %s", p, w.Code, w.Body)
		}
	}
	// A V2 body on the SageMaker route, and the V2 custom route.
	for _, p := range []string{"/invocations", "/infer"} {
		if r := decodeResp(t, call(t, h, "POST", p, linearBody)); string(r.Outputs[0].Data) != "[3,5,7,9]" {
			t.Errorf("V2 body on %s: %+v", p, r)
		}
	}
	m.Close()
	if w := call(t, h, "GET", "/ping", ""); w.Code != 503 {
		t.Errorf("/ping after close: %d", w.Code)
	}
	if w := call(t, h, "GET", "/azure/live", ""); w.Code != 200 {
		t.Errorf("live after close: %d", w.Code)
	}
}

func TestEmbedding(t *testing.T) {
	existing := http.NewServeMux()
	existing.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })

	wrapped := httpapi.New(httpapi.WithFallback(existing))
	_ = wrapped.Handle("linear", servingtest.Linear(2))
	if w := call(t, wrapped, "GET", "/hello", ""); w.Body.String() != "hi" {
		t.Errorf("fallback: %d %s", w.Code, w.Body)
	}
	if w := call(t, wrapped, "POST", "/v2/models/linear/infer", linearBody); w.Code != 200 {
		t.Errorf("wrapped infer: %d", w.Code)
	}

	prefixed := httpapi.New(httpapi.WithPrefix("/ml/"))
	_ = prefixed.Handle("linear", servingtest.Linear(2))
	stripped := httpapi.New()
	_ = stripped.Handle("linear", servingtest.Linear(2))
	mux := http.NewServeMux()
	mux.Handle("/ml/", prefixed)
	mux.Handle("/strip/", http.StripPrefix("/strip", stripped))
	for _, p := range []string{"/ml/v2/models/linear/infer", "/strip/v2/models/linear/infer"} {
		if w := call(t, mux, "POST", p, linearBody); w.Code != 200 {
			t.Errorf("%s: %d %s", p, w.Code, w.Body)
		}
	}
	if w := call(t, mux, "POST", "/ml/v2/models/linear/infer/x", linearBody); w.Code != 404 {
		t.Errorf("unknown path under prefix: %d", w.Code)
	}
}

// TestTraceContext checks the W3C traceparent header reaches the Predictor's ctx.
func TestTraceContext(t *testing.T) {
	got := make(chan string, 1)
	p := servingtest.Func(func(ctx context.Context, req *serving.Request) (*serving.Response, error) {
		got <- traceIDOf(ctx)
		return &serving.Response{}, nil
	})
	restore := setW3CPropagator()
	defer restore()
	h := httpapi.New()
	_ = h.Handle("m", p)
	call(t, h, "POST", "/v2/models/m/infer", linearBody, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if id := <-got; id != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %q", id)
	}
}

// TestSlowHeaders opens a raw connection that sends half a request line and
// stalls: the server closes it after ReadHeaderTimeout while serving others.
func TestSlowHeaders(t *testing.T) {
	h, _ := linearHandler(t)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\n")

	resp, err := http.Post(srv.URL+"/v2/models/linear/infer", "application/json", strings.NewReader(linearBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("other client: %d", resp.StatusCode)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The server answers 408 or just closes; either way the read ends.
	_, err = bufio.NewReader(conn).ReadString(0)
	if err == nil || isTimeout(err) {
		t.Errorf("slow client not closed by the server: %v", err)
	}
	srv.Client().CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

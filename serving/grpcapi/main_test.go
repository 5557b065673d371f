package grpcapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"go.uber.org/goleak"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/grpcapi/internal/nativetest"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/yalue/onnxruntime_go.Ptr"))
}

// serve starts h on an h2c loopback server and returns a gRPC client of it
// (Connect's client speaking the gRPC protocol over HTTP/2 without TLS).
func serve(t testing.TB, h http.Handler, opts ...connect.ClientOption) inferencepbconnect.GRPCInferenceServiceClient {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = grpcapi.Protocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return dial(t, srv.URL, opts...)
}

// dial returns a Connect gRPC client of the server at url, over plaintext
// HTTP/2.
func dial(t testing.TB, url string, opts ...connect.ClientOption) inferencepbconnect.GRPCInferenceServiceClient {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return inferencepbconnect.NewGRPCInferenceServiceClient(&http.Client{Transport: tr}, url, append([]connect.ClientOption{connect.WithGRPC()}, opts...)...)
}

// namedClient is a client of one of the two servers.
type namedClient struct {
	name string
	inferencepbconnect.GRPCInferenceServiceClient
}

// clients serves m's models with both gRPC servers, the Connect handler
// and grpc-go's (grpcserver.New), and returns a client of each: one set of RPCs
// behind both must answer alike.
func clients(t testing.TB, m grpcapi.Models, opts ...grpcapi.Option) []namedClient {
	t.Helper()
	return []namedClient{
		{"connect", serve(t, grpcapi.New(m, opts...))},
		{"native", dial(t, "http://"+serveNative(t, m, opts...))},
	}
}

// echo returns every input as an output of the same name.
func echo() *servingtest.Fake {
	return servingtest.Func(func(_ context.Context, req *serving.Request) (*serving.Response, error) {
		return &serving.Response{ID: req.ID, Model: req.Model, Version: req.Version, Outputs: req.Inputs, Params: req.Params}, nil
	})
}

// models registers p as model name in a REST handler, the Models of the
// gRPC handler.
func models(t testing.TB, name string, p serving.Predictor, opts ...httpapi.ModelOption) *httpapi.Handler {
	t.Helper()
	rest := httpapi.New()
	if err := rest.Handle(name, p, opts...); err != nil {
		t.Fatal(err)
	}
	return rest
}

// client serves p as model name and returns a client.
func client(t testing.TB, name string, p serving.Predictor, opts ...grpcapi.Option) inferencepbconnect.GRPCInferenceServiceClient {
	t.Helper()
	return serve(t, grpcapi.New(models(t, name, p), opts...))
}

func infer(c inferencepbconnect.GRPCInferenceServiceClient, msg *pb.ModelInferRequest, hdr ...string) (*pb.ModelInferResponse, error) {
	req := connect.NewRequest(msg)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header().Set(hdr[i], hdr[i+1])
	}
	resp, err := c.ModelInfer(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func wantCode(t testing.TB, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("code %v (%v), want %v", got, err, code)
	}
}

func httptestRecorder(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// serveAddr starts h on an h2c loopback server and returns its host:port.
func serveAddr(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = grpcapi.Protocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// serveNative is nativetest.Serve.
var serveNative = nativetest.Serve

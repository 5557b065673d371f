package grpcapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// One server, one port, both protocols: the models registered with the REST
// handler are served over gRPC too, on plaintext HTTP/2.
func Example() {
	rest := httpapi.New()
	rest.Handle("linear", servingtest.Linear(2)) // y = 2x + 1

	srv := httptest.NewUnstartedServer(grpcapi.New(rest, grpcapi.WithFallback(rest)))
	srv.Config.Protocols = grpcapi.Protocols()
	srv.Start()
	defer srv.Close()

	// A gRPC client over h2c (any gRPC client works; this one is Connect's).
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := inferencepbconnect.NewGRPCInferenceServiceClient(&http.Client{Transport: tr}, srv.URL, connect.WithGRPC())

	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{1, 2})
	req := grpcapi.EncodeRequest(&serving.Request{Model: "linear", Inputs: []serving.Tensor{x}})
	resp, err := client.ModelInfer(context.Background(), connect.NewRequest(req))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := grpcapi.DecodeResponse(resp.Msg)
	y, _ := serving.Values[float32](out.Outputs[0])
	fmt.Println(out.Outputs[0].Name, y)

	// Errors are gRPC statuses mapped from serving's codes.
	_, err = client.ModelInfer(context.Background(), connect.NewRequest(&pb.ModelInferRequest{ModelName: "nope"}))
	fmt.Println(connect.CodeOf(err))

	// The REST API answers on the same port.
	r, _ := srv.Client().Get(srv.URL + "/v2/health/ready")
	r.Body.Close()
	fmt.Println("REST ready:", r.StatusCode)
	// Output:
	// y [3 5]
	// not_found
	// REST ready: 200
}

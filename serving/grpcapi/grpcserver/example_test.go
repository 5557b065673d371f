package grpcserver_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	"github.com/servekit/servekit/serving/grpcapi/grpcserver"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/httpapi"
	"github.com/servekit/servekit/serving/servingtest"
)

// The gRPC port of its own, Triton's layout: grpc-go's server of the models
// the REST handler serves, with health per model, stopped as
// http.Server.Shutdown stops a server.
func ExampleNew() {
	rest := httpapi.New()
	rest.Handle("linear", servingtest.Linear(2)) // y = 2x + 1

	drain := make(chan struct{})
	gs := grpcserver.New(rest, grpcserver.WithDrain(drain))
	ln, err := net.Listen("tcp", "127.0.0.1:0") // :8001 in production
	if err != nil {
		fmt.Println(err)
		return
	}
	go gs.Serve(ln)

	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	ctx := context.Background()

	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{1, 2})
	resp := new(pb.ModelInferResponse)
	req := grpcapi.EncodeRequest(&serving.Request{Model: "linear", Inputs: []serving.Tensor{x}})
	if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, req, resp); err != nil {
		fmt.Println(err)
		return
	}
	out, _ := grpcapi.DecodeResponse(resp)
	y, _ := serving.Values[float32](out.Outputs[0])
	fmt.Println(out.Outputs[0].Name, y)

	health := healthpb.NewHealthClient(cc)
	h, _ := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "linear"})
	fmt.Println("linear:", h.GetStatus())

	close(drain) // SIGTERM: probes see NOT_SERVING while calls are still served
	h, _ = health.Check(ctx, &healthpb.HealthCheckRequest{Service: "linear"})
	fmt.Println("draining:", h.GetStatus())
	fmt.Println(grpcserver.Shutdown(ctx, gs))
	// Output:
	// y [3 5]
	// linear: SERVING
	// draining: NOT_SERVING
	// <nil>
}

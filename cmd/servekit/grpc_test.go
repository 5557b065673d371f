package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// TestEndToEndGRPC: the grpcurl request run prints, sent with grpc-go to
// the port that serves REST, gets the score REST gives for the curl line.
func TestEndToEndGRPC(t *testing.T) {
	base, curl, stop := start(t)
	defer stop()
	grpcurl := grpcurlLine(strings.TrimPrefix(base, "http://"), "fraud", false)
	m := regexp.MustCompile(`-d '([^']*)' (\S+) inference\.GRPCInferenceService/ModelInfer$`).FindStringSubmatch(grpcurl)
	if m == nil {
		t.Fatalf("cannot read grpcurl line %q", grpcurl)
	}
	if "http://"+m[2] != base {
		t.Errorf("grpcurl line targets %s, server is %s", m[2], base)
	}
	var req pb.ModelInferRequest
	if err := protojson.Unmarshal([]byte(m[1]), &req); err != nil {
		t.Fatalf("grpcurl payload %s: %v", m[1], err)
	}
	cc, err := grpc.NewClient(m[2], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var resp pb.ModelInferResponse
	if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, &req, &resp); err != nil {
		t.Fatal(err)
	}
	out, err := grpcapi.DecodeResponse(&resp)
	if err != nil || len(out.Outputs) != 1 {
		t.Fatalf("answer %v: %v", &resp, err)
	}
	score, _ := out.Outputs[0].Float64At(0)

	url, body := curlRequest(t, curl)
	r, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	var rest struct{ Outputs []struct{ Data []float32 } }
	if err := json.Unmarshal(b, &rest); err != nil || len(rest.Outputs) != 1 {
		t.Fatalf("REST answer %s: %v", b, err)
	}
	if float32(score) != rest.Outputs[0].Data[0] || resp.ModelVersion != "1" {
		t.Errorf("gRPC score %v version %q, REST %v", score, resp.ModelVersion, rest.Outputs[0].Data[0])
	}

	req.ModelName = "nope"
	err = cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, &req, &resp)
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown model over gRPC: %v", err)
	}
}

// --allow-grpc=false turns gRPC off on the HTTP port too, as Triton's
// does: a gRPC call there is not answered as one.
func TestAllowGRPCFalse(t *testing.T) {
	base, curl, stop := start(t, "--allow-grpc=false")
	defer stop()
	url, body := curlRequest(t, curl)
	checkScore(t, url, body)
	cc, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var resp pb.ServerLiveResponse
	if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceServerLiveProcedure, &pb.ServerLiveRequest{}, &resp); err == nil {
		t.Error("gRPC answered with --allow-grpc=false")
	}
}

// TestGRPCPort: on --grpc-port, grpc-go's server answers the request its
// printed grpcurl line sends (by reflection: no .proto) and the health of
// the model by name; stopping serve drains it with the HTTP port.
func TestGRPCPort(t *testing.T) {
	_, _, printed, stop := startOut(t, "--grpc-address", "127.0.0.1", "--grpc-port", strconv.Itoa(freePort(t)))
	defer stop()
	var line string
	for _, l := range printed.all() {
		if strings.HasPrefix(l, "grpcurl ") && !strings.Contains(l, "-proto") {
			line = l
		}
	}
	m := regexp.MustCompile(`-d '([^']*)' (\S+) inference\.GRPCInferenceService/ModelInfer$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no grpcurl line for the gRPC port in %q", printed.all())
	}
	var req pb.ModelInferRequest
	if err := protojson.Unmarshal([]byte(m[1]), &req); err != nil {
		t.Fatalf("grpcurl payload %s: %v", m[1], err)
	}
	cc, err := grpc.NewClient(m[2], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "fraud"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health of fraud: %v %v", h, err)
	}
	var resp pb.ModelInferResponse
	if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, &req, &resp); err != nil {
		t.Fatal(err)
	}
	if out, err := grpcapi.DecodeResponse(&resp); err != nil || len(out.Outputs) != 1 || resp.ModelVersion != "1" {
		t.Errorf("answer %v: %v", &resp, err)
	}
}

package grpcserver

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/oip"
)

// health is the standard grpc.health.v1.Health service over the model
// table, as Kubernetes' gRPC probes and gRPC clients' health checking call
// it. The service name is a model's name (its default version), or "" (or
// the inference service's name) for the server as a whole: SERVING when
// ready, NOT_SERVING when not, and every service NOT_SERVING once the
// drain channel (WithDrain) is closed. An unknown model is NotFound to
// Check and SERVICE_UNKNOWN to Watch, which goes on watching: a model
// loaded later turns SERVING.
//
// Nothing tells the table's readers that a model was loaded or unloaded,
// or that a Predictor's readiness changed, so Watch looks every
// healthInterval and sends what changed; Check and List look now.
type health struct {
	healthpb.UnimplementedHealthServer
	srv   *oip.Server
	drain <-chan struct{}
}

// healthInterval is how often Watch looks at the models (export_test.go
// shortens it).
var healthInterval = time.Second

// maxHealthList bounds List's answer, as grpc-go's own health server does.
const maxHealthList = 100

func (s *health) status(service string) healthpb.HealthCheckResponse_ServingStatus {
	if s.draining() {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	var ready bool
	if service == "" || service == inferencepbconnect.GRPCInferenceServiceName {
		ready = s.srv.Ready()
	} else {
		var err error
		if ready, err = s.srv.ModelReady(service, ""); err != nil {
			return healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
	}
	if ready {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

func (s *health) draining() bool {
	select {
	case <-s.drain:
		return true
	default:
		return false
	}
}

func (s *health) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st := s.status(req.GetService())
	if st == healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		return nil, status.Errorf(codes.NotFound, "grpcserver: unknown service %q: health names a model, or \"\" for the server", req.GetService())
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers the server ("") and every model.
func (s *health) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	models := s.srv.Models()
	if len(models)+1 > maxHealthList {
		return nil, status.Errorf(codes.ResourceExhausted, "grpcserver: %d models, more than the %d a health list holds; Check them one at a time", len(models), maxHealthList-1)
	}
	out := &healthpb.HealthListResponse{Statuses: make(map[string]*healthpb.HealthCheckResponse, len(models)+1)}
	for _, name := range append(models, "") {
		if st := s.status(name); st != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
			out.Statuses[name] = &healthpb.HealthCheckResponse{Status: st}
		}
	}
	return out, nil
}

// Watch sends the service's status now and whenever it changes. Once the
// server drains it sends NOT_SERVING and ends the call (Unavailable), so
// that GracefulStop does not wait for watchers, which would otherwise
// hold their calls open for ever; their clients retry elsewhere.
func (s *health) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	for {
		st := s.status(req.GetService())
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		if s.draining() {
			return status.Error(codes.Unavailable, "grpcserver: server draining")
		}
		select {
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-s.drain:
		case <-tick.C:
		}
	}
}

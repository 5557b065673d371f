package grpcapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// service adapts the RPCs (rpc.go) to the generated Connect interface;
// its methods are not part of Handler's API.
type service struct{ h *Handler }

// unary calls f with what the Connect request carries and wraps its
// answer, or maps its error (toError).
func unary[Q, R any](ctx context.Context, h *Handler, req *connect.Request[Q], f func(context.Context, incoming, *Q) (*R, error)) (*connect.Response[R], error) {
	in := incoming{header: req.Header()}
	in.admin, _ = ctx.Value(adminKey{}).(*http.Request)
	out, err := f(ctx, in, req.Msg)
	if err != nil {
		return nil, toError(err, h.cfg.retryAfter)
	}
	return connect.NewResponse(out), nil
}

func (s *service) ServerLive(context.Context, *connect.Request[pb.ServerLiveRequest]) (*connect.Response[pb.ServerLiveResponse], error) {
	return connect.NewResponse(&pb.ServerLiveResponse{Live: true}), nil
}

func (s *service) ServerReady(ctx context.Context, req *connect.Request[pb.ServerReadyRequest]) (*connect.Response[pb.ServerReadyResponse], error) {
	return unary(ctx, s.h, req, s.h.serverReady)
}

func (s *service) ModelReady(ctx context.Context, req *connect.Request[pb.ModelReadyRequest]) (*connect.Response[pb.ModelReadyResponse], error) {
	return unary(ctx, s.h, req, s.h.modelReady)
}

func (s *service) ServerMetadata(ctx context.Context, req *connect.Request[pb.ServerMetadataRequest]) (*connect.Response[pb.ServerMetadataResponse], error) {
	return unary(ctx, s.h, req, s.h.serverMetadata)
}

func (s *service) ModelMetadata(ctx context.Context, req *connect.Request[pb.ModelMetadataRequest]) (*connect.Response[pb.ModelMetadataResponse], error) {
	return unary(ctx, s.h, req, s.h.modelMetadata)
}

func (s *service) ModelInfer(ctx context.Context, req *connect.Request[pb.ModelInferRequest]) (*connect.Response[pb.ModelInferResponse], error) {
	hdr := req.Header()
	ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(hdr))
	msg, err := s.h.infer(ctx, incoming{header: hdr}, req.Msg)
	if err != nil {
		return nil, toError(err, s.h.cfg.retryAfter)
	}
	return connect.NewResponse(msg), nil
}

// ModelStreamInfer answers the requests of one stream in order, one at a
// time. A request that fails is answered with error_message and the stream
// goes on, as Triton's does; the stream ends when the client closes its
// side or the call's context ends.
func (s *service) ModelStreamInfer(ctx context.Context, stream *connect.BidiStream[pb.ModelInferRequest, pb.ModelStreamInferResponse]) error {
	hdr := stream.RequestHeader()
	ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(hdr))
	for {
		in, err := stream.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		out := &pb.ModelStreamInferResponse{}
		if msg, err := s.h.infer(ctx, incoming{header: hdr}, in); err != nil {
			out.ErrorMessage = err.Error()
		} else {
			out.InferResponse = msg
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

func (s *service) ModelConfig(ctx context.Context, req *connect.Request[pb.ModelConfigRequest]) (*connect.Response[pb.ModelConfigResponse], error) {
	return unary(ctx, s.h, req, s.h.modelConfig)
}

func (s *service) ModelStatistics(ctx context.Context, req *connect.Request[pb.ModelStatisticsRequest]) (*connect.Response[pb.ModelStatisticsResponse], error) {
	return unary(ctx, s.h, req, s.h.modelStatistics)
}

func (s *service) RepositoryIndex(ctx context.Context, req *connect.Request[pb.RepositoryIndexRequest]) (*connect.Response[pb.RepositoryIndexResponse], error) {
	return unary(ctx, s.h, req, s.h.repositoryIndex)
}

func (s *service) RepositoryModelLoad(ctx context.Context, req *connect.Request[pb.RepositoryModelLoadRequest]) (*connect.Response[pb.RepositoryModelLoadResponse], error) {
	return unary(ctx, s.h, req, s.h.repositoryModelLoad)
}

func (s *service) RepositoryModelUnload(ctx context.Context, req *connect.Request[pb.RepositoryModelUnloadRequest]) (*connect.Response[pb.RepositoryModelUnloadResponse], error) {
	return unary(ctx, s.h, req, s.h.repositoryModelUnload)
}

func (s *service) SystemSharedMemoryStatus(ctx context.Context, req *connect.Request[pb.SystemSharedMemoryStatusRequest]) (*connect.Response[pb.SystemSharedMemoryStatusResponse], error) {
	return unary(ctx, s.h, req, s.h.systemSharedMemoryStatus)
}

func (s *service) SystemSharedMemoryRegister(context.Context, *connect.Request[pb.SystemSharedMemoryRegisterRequest]) (*connect.Response[pb.SystemSharedMemoryRegisterResponse], error) {
	return nil, toError(errSharedMemory, 0)
}

func (s *service) SystemSharedMemoryUnregister(_ context.Context, req *connect.Request[pb.SystemSharedMemoryUnregisterRequest]) (*connect.Response[pb.SystemSharedMemoryUnregisterResponse], error) {
	if err := unregister(req.Msg.GetName()); err != nil {
		return nil, toError(err, 0)
	}
	return connect.NewResponse(&pb.SystemSharedMemoryUnregisterResponse{}), nil
}

func (s *service) CudaSharedMemoryStatus(ctx context.Context, req *connect.Request[pb.CudaSharedMemoryStatusRequest]) (*connect.Response[pb.CudaSharedMemoryStatusResponse], error) {
	return unary(ctx, s.h, req, s.h.cudaSharedMemoryStatus)
}

func (s *service) CudaSharedMemoryRegister(context.Context, *connect.Request[pb.CudaSharedMemoryRegisterRequest]) (*connect.Response[pb.CudaSharedMemoryRegisterResponse], error) {
	return nil, toError(errSharedMemory, 0)
}

func (s *service) CudaSharedMemoryUnregister(_ context.Context, req *connect.Request[pb.CudaSharedMemoryUnregisterRequest]) (*connect.Response[pb.CudaSharedMemoryUnregisterResponse], error) {
	if err := unregister(req.Msg.GetName()); err != nil {
		return nil, toError(err, 0)
	}
	return connect.NewResponse(&pb.CudaSharedMemoryUnregisterResponse{}), nil
}

func (s *service) TraceSetting(context.Context, *connect.Request[pb.TraceSettingRequest]) (*connect.Response[pb.TraceSettingResponse], error) {
	return nil, toError(errTrace, 0)
}

func (s *service) LogSettings(context.Context, *connect.Request[pb.LogSettingsRequest]) (*connect.Response[pb.LogSettingsResponse], error) {
	return nil, toError(errLog, 0)
}

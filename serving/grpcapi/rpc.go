package grpcapi

import (
	"context"
	"net/http"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// The RPCs, written against the generated messages only: no connect-go
// type appears here, so the Connect handler (service.go) and any other
// gRPC server of the same service call the same functions. Each takes
// what a call carries besides its message (incoming) and returns the
// answer or an error with serving's codes.

// incoming is what a call carries besides its message: its metadata, as
// the Connect handler's HTTP headers or grpc-go's metadata in ctx.
type incoming struct {
	// header is the call's metadata as HTTP/2 headers (Connect), or nil.
	header http.Header
	// ctx holds the call's metadata (grpc-go) when header is nil.
	ctx context.Context
	// admin is the call's HTTP request as it arrived (Connect), which the
	// repository RPCs hand to the admin authoriser; grpc-go's calls make
	// one from their metadata (adminOf).
	admin *http.Request
	// meta reads a metadata value from ctx (grpc-go's, by grpcserver)
	// when header is nil; adminOf makes admin from ctx.
	meta    func(ctx context.Context, key string) string
	adminOf func(ctx context.Context) *http.Request
}

// get reads one metadata value: canonical is the key as net/http
// canonicalises it, lower as gRPC metadata spells it; "" reads nothing.
func (in incoming) get(canonical, lower string) string {
	if canonical == "" {
		return ""
	}
	if in.header != nil {
		if v := in.header[canonical]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if in.meta != nil {
		return in.meta(in.ctx, lower)
	}
	return ""
}

func (h *Handler) serverReady(context.Context, incoming, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: h.srv.Ready()}, nil
}

// modelReady answers ready true or false for a known model, and NotFound
// for an unknown model or version, as GET /v2/models/{name}/ready answers
// 404.
func (h *Handler) modelReady(_ context.Context, _ incoming, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	ready, err := h.srv.ModelReady(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: ready}, nil
}

func (h *Handler) serverMetadata(context.Context, incoming, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	name, version := h.srv.Info()
	if h.cfg.serverName != "" {
		name, version = h.cfg.serverName, h.cfg.serverVersion
	}
	// Binary tensor data is a REST extension; gRPC has raw contents built in.
	return &pb.ServerMetadataResponse{Name: name, Version: version, Extensions: h.srv.Extensions()}, nil
}

func (h *Handler) modelMetadata(_ context.Context, _ incoming, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	name := req.GetName()
	md, versions, err := h.srv.ModelMetadata(name, req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelMetadataResponse{
		Name:     name,
		Versions: versions,
		Platform: md.Platform,
		Inputs:   specs(md.Inputs),
		Outputs:  specs(md.Outputs),
	}, nil
}

func specs(in []serving.TensorSpec) []*pb.ModelMetadataResponse_TensorMetadata {
	out := make([]*pb.ModelMetadataResponse_TensorMetadata, len(in))
	for i, s := range in {
		out[i] = &pb.ModelMetadataResponse_TensorMetadata{Name: s.Name, Datatype: s.DataType.String(), Shape: s.Shape}
	}
	return out
}

func (h *Handler) modelConfig(_ context.Context, _ incoming, req *pb.ModelConfigRequest) (*pb.ModelConfigResponse, error) {
	c, err := h.srv.Config(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelConfigResponse{Config: c}, nil
}

func (h *Handler) modelStatistics(_ context.Context, _ incoming, req *pb.ModelStatisticsRequest) (*pb.ModelStatisticsResponse, error) {
	st, err := h.srv.Statistics(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	out := &pb.ModelStatisticsResponse{ModelStats: make([]*pb.ModelStatistics, len(st))}
	for i, s := range st {
		out.ModelStats[i] = modelStatistics(s)
	}
	return out, nil
}

func modelStatistics(s oip.ModelStats) *pb.ModelStatistics {
	in := s.Inference
	m := &pb.ModelStatistics{
		Name: s.Name, Version: s.Version,
		InferenceCount: s.InferenceCount, ExecutionCount: s.ExecutionCount,
		InferenceStats: &pb.InferStatistics{
			Success: stat(in.Success), Fail: stat(in.Fail), Queue: stat(in.Queue),
			ComputeInput: stat(in.ComputeInput), ComputeInfer: stat(in.ComputeInfer), ComputeOutput: stat(in.ComputeOutput),
			CacheHit: stat(in.CacheHit), CacheMiss: stat(in.CacheMiss),
		},
		BatchStats: make([]*pb.InferBatchStatistics, len(s.Batches)),
	}
	if !s.LastInference.IsZero() {
		m.LastInference = uint64(s.LastInference.UnixMilli())
	}
	for i, b := range s.Batches {
		m.BatchStats[i] = &pb.InferBatchStatistics{BatchSize: uint64(b.Size),
			ComputeInput: stat(b.ComputeInput), ComputeInfer: stat(b.ComputeInfer), ComputeOutput: stat(b.ComputeOutput)}
	}
	return m
}

func stat(s oip.Stat) *pb.StatisticDuration { return &pb.StatisticDuration{Count: s.Count, Ns: s.NS} }

// authorize admits a repository call through the Server's admin
// authoriser, which sees the call's HTTP request.
func (h *Handler) authorize(in incoming, repository string) (string, error) {
	r := in.admin
	if r == nil && in.adminOf != nil {
		r = in.adminOf(in.ctx)
	}
	if r == nil {
		return "", serving.Errorf(serving.PermissionDenied, "grpcapi: repository calls need the request they arrived in, for the admin authoriser")
	}
	who, err := h.srv.AuthorizeRepository(r)
	if err == nil && repository != "" {
		err = serving.Errorf(serving.InvalidArgument, "grpcapi: repository %q: this server has one model repository; leave repository_name empty", repository)
	}
	return who, err
}

func (h *Handler) repositoryIndex(ctx context.Context, in incoming, req *pb.RepositoryIndexRequest) (*pb.RepositoryIndexResponse, error) {
	if _, err := h.authorize(in, req.GetRepositoryName()); err != nil {
		return nil, err
	}
	idx, err := h.srv.RepositoryIndex(ctx, req.GetReady())
	if err != nil {
		return nil, err
	}
	out := &pb.RepositoryIndexResponse{Models: make([]*pb.RepositoryIndexResponse_ModelIndex, len(idx))}
	for i, e := range idx {
		out.Models[i] = &pb.RepositoryIndexResponse_ModelIndex{Name: e.Name, Version: e.Version, State: e.State, Reason: e.Reason}
	}
	return out, nil
}

func (h *Handler) repositoryModelLoad(ctx context.Context, in incoming, req *pb.RepositoryModelLoadRequest) (*pb.RepositoryModelLoadResponse, error) {
	who, err := h.authorize(in, req.GetRepositoryName())
	if err != nil {
		return nil, err
	}
	if err := h.srv.LoadModel(ctx, who, req.GetModelName(), repositoryParams(req.GetParameters())); err != nil {
		return nil, err
	}
	return &pb.RepositoryModelLoadResponse{}, nil
}

func (h *Handler) repositoryModelUnload(ctx context.Context, in incoming, req *pb.RepositoryModelUnloadRequest) (*pb.RepositoryModelUnloadResponse, error) {
	who, err := h.authorize(in, req.GetRepositoryName())
	if err != nil {
		return nil, err
	}
	if err := h.srv.UnloadModel(ctx, who, req.GetModelName(), repositoryParams(req.GetParameters())); err != nil {
		return nil, err
	}
	return &pb.RepositoryModelUnloadResponse{}, nil
}

func repositoryParams(in map[string]*pb.ModelRepositoryParameter) map[string]any {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, p := range in {
		switch v := p.GetParameterChoice().(type) {
		case *pb.ModelRepositoryParameter_BoolParam:
			out[k] = v.BoolParam
		case *pb.ModelRepositoryParameter_Int64Param:
			out[k] = v.Int64Param
		case *pb.ModelRepositoryParameter_StringParam:
			out[k] = v.StringParam
		case *pb.ModelRepositoryParameter_BytesParam:
			out[k] = v.BytesParam
		default:
			out[k] = nil
		}
	}
	return out
}

// Shared memory: servekit takes tensors in the messages and registers no
// regions. Status and unregistering all are answered truthfully (none);
// registering is Unimplemented, and so is unregistering a named region,
// which cannot exist (NotFound would suggest it might).
var errSharedMemory = serving.Errorf(serving.Unimplemented,
	"grpcapi: shared memory is not supported: send tensors in raw_input_contents (perf_analyzer: leave --shared-memory at none)")

func (h *Handler) systemSharedMemoryStatus(_ context.Context, _ incoming, req *pb.SystemSharedMemoryStatusRequest) (*pb.SystemSharedMemoryStatusResponse, error) {
	if req.GetName() != "" {
		return nil, serving.Errorf(serving.NotFound, "grpcapi: no shared memory region %q: this server registers none", req.GetName())
	}
	return &pb.SystemSharedMemoryStatusResponse{}, nil
}

func (h *Handler) cudaSharedMemoryStatus(_ context.Context, _ incoming, req *pb.CudaSharedMemoryStatusRequest) (*pb.CudaSharedMemoryStatusResponse, error) {
	if req.GetName() != "" {
		return nil, serving.Errorf(serving.NotFound, "grpcapi: no CUDA shared memory region %q: this server registers none", req.GetName())
	}
	return &pb.CudaSharedMemoryStatusResponse{}, nil
}

func unregister(name string) error {
	if name != "" {
		return errSharedMemory
	}
	return nil
}

var errTrace = serving.Errorf(serving.Unimplemented,
	"grpcapi: trace settings are not served: servekit traces with OpenTelemetry (W3C traceparent in the call's metadata; sampling and export are configured where the server is built)")

var errLog = serving.Errorf(serving.Unimplemented,
	"grpcapi: log settings are not served: servekit logs with log/slog, configured where the server is built")

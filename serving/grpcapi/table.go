package grpcapi

import (
	"context"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/internal/rpctable"
)

// The RPCs as a table, for grpcserver (grpc-go's server of the same
// service, in a package of its own so that a program serving only the
// Connect handler links none of grpc-go): the same functions the Handler
// calls, behind the same options.

func init() {
	rpctable.New = func(m, opts any) *rpctable.Service { return newService(m.(Models), opts.([]Option)) }
	rpctable.Option = func(v any) any {
		return Option(optionFunc(func(c *config) { c.extra = append(c.extra, v) }))
	}
}

func newService(m Models, opts []Option) *rpctable.Service {
	h := newHandler(m, opts)
	return &rpctable.Service{
		Unary: []rpctable.Unary{
			tableEntry(h, "ServerLive", func(*Handler, context.Context, incoming, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
				return &pb.ServerLiveResponse{Live: true}, nil
			}),
			tableEntry(h, "ServerReady", (*Handler).serverReady),
			tableEntry(h, "ModelReady", (*Handler).modelReady),
			tableEntry(h, "ServerMetadata", (*Handler).serverMetadata),
			tableEntry(h, "ModelMetadata", (*Handler).modelMetadata),
			tableEntry(h, "ModelConfig", (*Handler).modelConfig),
			tableEntry(h, "ModelStatistics", (*Handler).modelStatistics),
			tableEntry(h, "RepositoryIndex", (*Handler).repositoryIndex),
			tableEntry(h, "RepositoryModelLoad", (*Handler).repositoryModelLoad),
			tableEntry(h, "RepositoryModelUnload", (*Handler).repositoryModelUnload),
			tableEntry(h, "SystemSharedMemoryStatus", (*Handler).systemSharedMemoryStatus),
			tableEntry(h, "SystemSharedMemoryRegister", func(*Handler, context.Context, incoming, *pb.SystemSharedMemoryRegisterRequest) (*pb.SystemSharedMemoryRegisterResponse, error) {
				return nil, errSharedMemory
			}),
			tableEntry(h, "SystemSharedMemoryUnregister", func(_ *Handler, _ context.Context, _ incoming, req *pb.SystemSharedMemoryUnregisterRequest) (*pb.SystemSharedMemoryUnregisterResponse, error) {
				return &pb.SystemSharedMemoryUnregisterResponse{}, unregister(req.GetName())
			}),
			tableEntry(h, "CudaSharedMemoryStatus", (*Handler).cudaSharedMemoryStatus),
			tableEntry(h, "CudaSharedMemoryRegister", func(*Handler, context.Context, incoming, *pb.CudaSharedMemoryRegisterRequest) (*pb.CudaSharedMemoryRegisterResponse, error) {
				return nil, errSharedMemory
			}),
			tableEntry(h, "CudaSharedMemoryUnregister", func(_ *Handler, _ context.Context, _ incoming, req *pb.CudaSharedMemoryUnregisterRequest) (*pb.CudaSharedMemoryUnregisterResponse, error) {
				return &pb.CudaSharedMemoryUnregisterResponse{}, unregister(req.GetName())
			}),
			tableEntry(h, "TraceSetting", func(*Handler, context.Context, incoming, *pb.TraceSettingRequest) (*pb.TraceSettingResponse, error) {
				return nil, errTrace
			}),
			tableEntry(h, "LogSettings", func(*Handler, context.Context, incoming, *pb.LogSettingsRequest) (*pb.LogSettingsResponse, error) {
				return nil, errLog
			}),
		},
		Infer: func(ctx context.Context, in rpctable.Incoming, msg *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
			return h.infer(ctx, incomingOf(in), msg)
		},
		Decode:     func(b []byte, m *pb.ModelInferRequest) error { return decodeInfer(b, m, h.cfg.lim, true) },
		Server:     h.srv,
		MaxBytes:   h.cfg.maxBytes,
		RetryAfter: h.cfg.retryAfter,
		Extra:      h.cfg.extra,
	}
}

func incomingOf(in rpctable.Incoming) incoming {
	return incoming{ctx: in.Ctx, meta: in.Meta, adminOf: in.Admin}
}

// tableEntry is one of the Handler's RPCs as the table holds it.
func tableEntry[Q, R any](h *Handler, name string, f func(*Handler, context.Context, incoming, *Q) (*R, error)) rpctable.Unary {
	return rpctable.Unary{
		Name: name,
		New:  func() any { return new(Q) },
		Call: func(ctx context.Context, in rpctable.Incoming, req any) (any, error) {
			return f(h, ctx, incomingOf(in), req.(*Q))
		},
	}
}

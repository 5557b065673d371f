package grpcapi

import (
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

func (s *service) ModelInfer(ctx context.Context, req *connect.Request[pb.ModelInferRequest]) (*connect.Response[pb.ModelInferResponse], error) {
	hdr := req.Header()
	ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(hdr))
	msg, err := s.h.infer(ctx, hdr, req.Msg)
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
		if msg, err := s.h.infer(ctx, hdr, in); err != nil {
			out.ErrorMessage = err.Error()
		} else {
			out.InferResponse = msg
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// infer serves one ModelInferRequest: resolve the model and version, decode,
// apply the deadline, predict, encode.
func (h *Handler) infer(ctx context.Context, hdr http.Header, msg *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	name, version := msg.GetModelName(), msg.GetModelVersion()
	if version == "" {
		version = header(hdr, h.cfg.versionHeader)
	}
	p, answered, err := h.models.Lookup(name, version)
	if err != nil {
		return nil, err
	}
	req, err := DecodeRequest(msg, h.cfg.lim.elements)
	if err != nil {
		return nil, err
	}
	// The resolved version: one cache key per version however it was
	// addressed, as httpapi does.
	req.Version = answered
	req.Key = routingKey(hdr, h.cfg.keyHeader, req.Params)
	ctx, cancel := h.budget(ctx, req.Params)
	defer cancel()
	if !serving.IsReady(p) {
		return nil, serving.Errorf(serving.Unavailable, "grpcapi: model %q is not ready", name)
	}
	resp, err := p.Predict(ctx, req)
	if err == nil && resp == nil {
		err = serving.Errorf(serving.Internal, "grpcapi: model %q returned no response", name)
	}
	if err != nil {
		return nil, err
	}
	outs, err := serving.SelectOutputs(req, resp)
	if err != nil {
		return nil, err
	}
	if cs, err := classifications(msg); err != nil {
		return nil, err
	} else if len(cs) > 0 {
		md, _ := serving.MetadataOf(p)
		if outs, err = serving.ClassifyOutputs(md, outs, cs); err != nil {
			return nil, err
		}
	}
	v := answered
	if resp.Version != "" {
		v = resp.Version
	}
	return EncodeResponse(&serving.Response{ID: msg.GetId(), Model: name, Version: v, Outputs: outs, Params: resp.Params}, h.rawOutputs(msg)), nil
}

func (h *Handler) rawOutputs(msg *pb.ModelInferRequest) bool {
	switch h.cfg.outputs {
	case TypedOutputs:
		return false
	case OutputsAsRequested:
		return len(msg.GetRawInputContents()) > 0
	}
	return true
}

// routingKey is the "routing_key" parameter, else the routing key metadata.
func routingKey(hdr http.Header, key string, params serving.Params) string {
	if k, ok := params[serving.ParamRoutingKey].(string); ok {
		return k
	}
	return header(hdr, key)
}

// budget bounds ctx, which already carries the gRPC deadline (Connect reads
// grpc-timeout), by the "timeout" parameter (µs) and WithMaxTimeout.
func (h *Handler) budget(ctx context.Context, params serving.Params) (context.Context, context.CancelFunc) {
	d := h.cfg.maxTimeout
	if t, ok := params.Timeout(); ok && (d == 0 || t < d) {
		d = t
	}
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}

package grpcapi

import (
	"context"
	"time"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// infer serves one ModelInferRequest, for ModelInfer and each message of
// ModelStreamInfer: resolve the model and version (model_version, else the
// version metadata), decode (classification requests included), the
// protocol's infer steps (oip.Server.Infer: routing key, deadline,
// readiness, output selection, classification, statistics), encode.
// ctx carries the call's deadline (grpc-timeout) and trace context.
func (h *Handler) infer(ctx context.Context, in incoming, msg *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	start := time.Now()
	version := msg.GetModelVersion()
	if version == "" {
		version = in.get(h.cfg.versionHeader, h.versionMD)
	}
	t, err := h.srv.Resolve(msg.GetModelName(), version)
	if err != nil {
		return nil, err
	}
	req, err := DecodeRequest(msg, h.cfg.lim.Elements)
	if err != nil {
		return nil, err
	}
	cs, err := classifications(msg)
	if err != nil {
		return nil, err
	}
	res, err := h.srv.Infer(ctx, t, req, oip.Call{Key: in.get(h.cfg.keyHeader, h.keyMD), MaxTimeout: h.cfg.maxTimeout, Start: start, Classify: cs})
	if err != nil {
		return nil, err
	}
	resp := *res.Response
	resp.ID, resp.Model, resp.Version, resp.Outputs = msg.GetId(), t.Model, res.Version, res.Outputs
	return EncodeResponse(&resp, h.rawOutputs(msg)), nil
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

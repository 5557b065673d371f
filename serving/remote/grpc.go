package remote

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
	"github.com/servekit/servekit/serving/oip"
)

// grpcT speaks the protocol's gRPC binding, with Connect's client in its
// gRPC mode: net/http's HTTP/2, one multiplexed connection per server.
type grpcT struct {
	c              inferencepbconnect.GRPCInferenceServiceClient
	owned          *http.Transport
	model, version string
}

func newGRPC(u *url.URL, model, version string, cfg *config) *grpcT {
	g := &grpcT{model: model, version: version}
	hc := cfg.client
	scheme := "https"
	if u.Scheme == "grpc" {
		scheme = "http"
	}
	if hc == nil {
		g.owned = &http.Transport{Protocols: new(http.Protocols), ForceAttemptHTTP2: true,
			DialContext: (&net.Dialer{}).DialContext, TLSClientConfig: &tls.Config{}}
		if scheme == "http" {
			g.owned.Protocols.SetUnencryptedHTTP2(true) // prior knowledge, as grpc-go dials
		} else {
			g.owned.Protocols.SetHTTP2(true)
		}
		hc = &http.Client{Transport: g.owned}
	}
	base := scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
	// No gzip: tensors of floats hardly compress, both ends would spend CPU
	// for nothing on the links model servers sit on (Triton's clients do
	// not compress either), and a compressed answer could inflate a
	// thousandfold before the size cap refuses it.
	g.c = inferencepbconnect.NewGRPCInferenceServiceClient(hc, base,
		connect.WithGRPC(),
		connect.WithCodec(codec{lim: cfg.lim}),
		connect.WithAcceptCompression("gzip", nil, nil),
		connect.WithReadMaxBytes(int(min(cfg.maxBytes, int64(^uint32(0)>>1)))))
	return g
}

func (g *grpcT) closeIdle() {
	if g.owned != nil {
		g.owned.CloseIdleConnections()
	}
}

// codec is Connect's "proto" codec with the answers decoded by
// grpcapi.Unmarshal: counted before they are allocated, within the limits,
// so an untrusted server's message costs the client what its bytes do.
type codec struct{ lim oip.Limits }

func (codec) Name() string { return "proto" }

func (codec) Marshal(m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("remote: %T is not a protobuf message", m)
	}
	return proto.Marshal(pm)
}

func (c codec) Unmarshal(b []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("remote: %T is not a protobuf message", m)
	}
	if err := grpcapi.Unmarshal(b, pm, c.lim); err != nil {
		return answerError{err}
	}
	return nil
}

// answerError marks an answer the codec refused: Connect reports it with
// a gRPC code of its own choosing, but the server, not the caller, is
// wrong (grpcError makes it Internal).
type answerError struct{ error }

func (e answerError) Unwrap() error { return e.error }

func request[T any](msg *T, hdr http.Header) *connect.Request[T] {
	r := connect.NewRequest(msg)
	for k, v := range hdr {
		r.Header()[k] = v
	}
	return r
}

func (g *grpcT) infer(ctx context.Context, req *serving.Request, hdr http.Header) (*serving.Response, error) {
	send := *req
	send.Params = withTimeout(ctx, req.Params) // grpc-timeout goes too; Triton's queue reads this
	msg := grpcapi.EncodeRequest(&send)
	msg.ModelName, msg.ModelVersion = g.model, g.version
	resp, err := g.c.ModelInfer(ctx, request(msg, hdr))
	if err != nil {
		return nil, grpcError(err)
	}
	out, err := grpcapi.DecodeResponse(resp.Msg)
	if err != nil {
		return nil, malformed(err)
	}
	return out, nil
}

func (g *grpcT) live(ctx context.Context, hdr http.Header) (bool, error) {
	resp, err := g.c.ServerLive(ctx, request(&pb.ServerLiveRequest{}, hdr))
	if err != nil {
		return false, grpcError(err)
	}
	return resp.Msg.GetLive(), nil
}

func (g *grpcT) ready(ctx context.Context, hdr http.Header) (bool, error) {
	resp, err := g.c.ServerReady(ctx, request(&pb.ServerReadyRequest{}, hdr))
	if err != nil {
		return false, grpcError(err)
	}
	return resp.Msg.GetReady(), nil
}

func (g *grpcT) modelReady(ctx context.Context, hdr http.Header) (bool, error) {
	resp, err := g.c.ModelReady(ctx, request(&pb.ModelReadyRequest{Name: g.model, Version: g.version}, hdr))
	if err != nil {
		return false, grpcError(err)
	}
	return resp.Msg.GetReady(), nil
}

func (g *grpcT) serverMetadata(ctx context.Context, hdr http.Header) (oip.ServerMetadata, error) {
	resp, err := g.c.ServerMetadata(ctx, request(&pb.ServerMetadataRequest{}, hdr))
	if err != nil {
		return oip.ServerMetadata{}, grpcError(err)
	}
	m := resp.Msg
	return oip.ServerMetadata{Name: m.GetName(), Version: m.GetVersion(), Extensions: m.GetExtensions()}, nil
}

func (g *grpcT) modelMetadata(ctx context.Context, hdr http.Header) (serving.Metadata, []string, error) {
	resp, err := g.c.ModelMetadata(ctx, request(&pb.ModelMetadataRequest{Name: g.model, Version: g.version}, hdr))
	if err != nil {
		return serving.Metadata{}, nil, grpcError(err)
	}
	m := resp.Msg
	md := serving.Metadata{Name: m.GetName(), Platform: m.GetPlatform()}
	if md.Inputs, err = specs(m.GetInputs(), "input"); err != nil {
		return serving.Metadata{}, nil, err
	}
	if md.Outputs, err = specs(m.GetOutputs(), "output"); err != nil {
		return serving.Metadata{}, nil, err
	}
	return md, m.GetVersions(), nil
}

func specs(ts []*pb.ModelMetadataResponse_TensorMetadata, what string) ([]serving.TensorSpec, error) {
	out := make([]serving.TensorSpec, len(ts))
	for i, t := range ts {
		dt, err := serving.ParseDataType(t.GetDatatype())
		if err != nil {
			return nil, serving.Errorf(serving.Internal, "malformed model metadata: %s %q: unknown datatype %q", what, t.GetName(), t.GetDatatype())
		}
		out[i] = serving.TensorSpec{Name: t.GetName(), DataType: dt, Shape: t.GetShape()}
	}
	return out, nil
}

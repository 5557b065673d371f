package grpcapi

import (
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// protoCodec is Connect's binary codec ("proto", for gRPC, gRPC-Web and
// Connect) with ModelInferRequest decoded within the handler's limits
// (wire.go); every other message, all small, goes to proto.Unmarshal.
type protoCodec struct{ lim oip.Limits }

var _ connect.Codec = protoCodec{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(m any) ([]byte, error) { return protoMessage(m, proto.Marshal) }

// MarshalAppend lets Connect marshal into its pooled buffers.
func (protoCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	return protoMessage(m, func(pm proto.Message) ([]byte, error) { return proto.MarshalOptions{}.MarshalAppend(dst, pm) })
}

func (c protoCodec) Unmarshal(b []byte, m any) error {
	var err error
	switch msg := m.(type) {
	case *pb.ModelInferRequest:
		err = decodeInferRequest(b, msg, c.lim)
	case proto.Message:
		err = proto.Unmarshal(b, msg)
	default:
		return fmt.Errorf("grpcapi: %T is not a protobuf message", m)
	}
	if err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return nil
}

func protoMessage(m any, f func(proto.Message) ([]byte, error)) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpcapi: %T is not a protobuf message", m)
	}
	return f(pm)
}

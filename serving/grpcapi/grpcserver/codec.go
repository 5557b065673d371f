package grpcserver

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/servekit/servekit/serving"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// nativeCodec is grpc-go's proto codec with buffers from grpc-go's pool,
// and ModelInferRequest decoded by grpcapi's bounded decoder (decode,
// within the Handler's limits) into an inferCall.
type nativeCodec struct {
	decode func(b []byte, m *pb.ModelInferRequest) error
}

var _ encoding.CodecV2 = nativeCodec{}

func (nativeCodec) Name() string { return "proto" }

// inferCall is what a ModelInfer request decodes into on grpc-go's server:
// the message, and the error that decoding it met, kept for the handler to
// answer with its own code (grpc-go makes a codec's errors Internal).
//
// The message's raw contents are not copied out of the buffer grpc-go read
// them into: buf, a reference to that buffer, holds them until release,
// after the call's tensors have been made from them (serving.FromRaw
// copies them into the tensors' own typed memory, aligned, so nothing
// after DecodeRequest reads the message's raw bytes). That is one copy and
// one allocation of the request's size less per call.
type inferCall struct {
	msg pb.ModelInferRequest
	err error
	buf mem.Buffer // nil once released
}

// release gives buf back to grpc-go's pool; the message's raw contents are
// gone with it.
func (c *inferCall) release() {
	if c.buf != nil {
		c.buf.Free()
		c.buf = nil
		c.msg.RawInputContents = nil
	}
}

// detach copies the raw contents out of buf and releases it, for a message
// that may outlive the call (an interceptor holds it).
func (c *inferCall) detach() {
	if c.buf == nil {
		return
	}
	n := 0
	for _, r := range c.msg.RawInputContents {
		n += len(r)
	}
	all := make([]byte, 0, n)
	for i, r := range c.msg.RawInputContents {
		start := len(all)
		all = append(all, r...)
		c.msg.RawInputContents[i] = all[start:len(all):len(all)]
	}
	c.buf.Free()
	c.buf = nil
}

func (c nativeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool()) // one buffer: a reference, no copy
	switch m := v.(type) {
	case *inferCall:
		m.err = c.decode(buf.ReadOnlyData(), &m.msg)
		if m.err != nil && serving.CodeOf(m.err) == serving.Internal {
			// A malformed message (bad wire format, invalid UTF-8) is the
			// client's error, as the Connect handler answers it.
			m.err = serving.NewError(serving.InvalidArgument, m.err)
		}
		if m.err == nil && len(m.msg.RawInputContents) > 0 {
			m.buf = buf // the raw contents are in it: released after the call
			return nil
		}
		m.msg.RawInputContents = nil
		buf.Free()
		return nil
	case proto.Message:
		defer buf.Free()
		return proto.Unmarshal(buf.ReadOnlyData(), m)
	}
	buf.Free()
	return fmt.Errorf("grpcserver: %T is not a protobuf message", v)
}

func (nativeCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpcserver: %T is not a protobuf message", v)
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // the Size just above
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.MarshalAppend(make([]byte, 0, size), m)
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	b, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

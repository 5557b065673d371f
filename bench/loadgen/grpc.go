package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/url"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/grpcapi/inferencepb/inferencepbconnect"
)

// fraudRow is DefaultBody's row, so both protocols send the same numbers.
var fraudRow = []float32{0.5, -1.2, 0.3, 2.1, -0.7, 1.5, 0.0, -0.4}

type grpcOptions struct {
	model, input *string
	typed        *bool
	conns, rows  *int
}

func grpcFlags(fs *flag.FlagSet) *grpcOptions {
	return &grpcOptions{
		model: fs.String("model", "fraud", "-grpc: model name"),
		input: fs.String("input", "features", "-grpc: input name (the fraud row, FP32 [1,8])"),
		typed: fs.Bool("typed", false, "-grpc: send fp32_contents instead of raw_input_contents"),
		conns: fs.Int("conns", 1, "-grpc: HTTP/2 connections the clients share (gRPC clients usually hold one)"),
		rows:  fs.Int("rows", 1, "rows of the fraud row per request, over HTTP (unless -body is given) and gRPC alike"),
	}
}

// fraudBody is DefaultBody with the row repeated n times.
func fraudBody(n int) string {
	row := strings.Trim(strings.ReplaceAll(fmt.Sprint(fraudRow), " ", ","), "[]")
	return fmt.Sprintf(`{"inputs":[{"name":"features","shape":[%d,%d],"datatype":"FP32","data":[%s]}]}`,
		n, len(fraudRow), strings.TrimSuffix(strings.Repeat(row+",", n), ","))
}

// fraudRows is the fraud row repeated n times.
func fraudRows(n int) []float32 {
	out := make([]float32, 0, n*len(fraudRow))
	for range n {
		out = append(out, fraudRow...)
	}
	return out
}

// callers dials target's host:port with google.golang.org/grpc (plaintext
// HTTP/2) and calls ModelInfer with the fraud row, raw by default. Clients
// share -conns connections round robin.
func (g *grpcOptions) callers(target string) (newCaller func() caller, closeAll func(), err error) {
	u, _ := url.Parse(target) // checked by checkLoopback
	if *g.conns < 1 || *g.conns > 256 {
		return nil, nil, fmt.Errorf("want 1 <= -conns <= 256")
	}
	conns := make([]*grpc.ClientConn, *g.conns)
	closeAll = func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}
	for i := range conns {
		// Each ClientConn holds a connection of its own.
		if conns[i], err = grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	rows := fraudRows(*g.rows)
	in := &pb.ModelInferRequest_InferInputTensor{Name: *g.input, Datatype: "FP32", Shape: []int64{int64(*g.rows), int64(len(fraudRow))}}
	msg := &pb.ModelInferRequest{ModelName: *g.model, Inputs: []*pb.ModelInferRequest_InferInputTensor{in}}
	if *g.typed {
		in.Contents = &pb.InferTensorContents{Fp32Contents: rows}
	} else {
		raw := make([]byte, 0, 4*len(rows))
		for _, v := range rows {
			raw = appendFloat32LE(raw, v)
		}
		msg.RawInputContents = [][]byte{raw}
	}
	// The request is marshalled once, as the HTTP clients send one
	// pre-encoded body, and the answer is read, not decoded, as the HTTP
	// clients read the body and check the status: what is left per call is
	// each protocol's client transport, so the generator's CPU per request
	// is comparable between the lines.
	body, err := proto.Marshal(msg)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	next := 0
	return func() caller {
		cc := conns[next%len(conns)]
		next++
		var answer []byte
		return func(ctx context.Context) error {
			if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, body, &answer, grpc.ForceCodecV2(rawCodec{})); err != nil {
				return err
			}
			if !hasOutputs(answer) {
				return fmt.Errorf("answer without outputs")
			}
			return nil
		}
	}, closeAll, nil
}

// rawCodec sends a message already marshalled ([]byte) and reads the
// answer's bytes into a *[]byte, reused from call to call.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T is not []byte", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T is not *[]byte", v)
	}
	n := data.Len()
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	data.CopyTo(*p)
	return nil
}

// hasOutputs reports whether b, a ModelInferResponse, has an output
// tensor (field 5), without decoding the rest.
func hasOutputs(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 5 && typ == protowire.BytesType {
			return true
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return false
		}
		b = b[n:]
	}
	return false
}

func appendFloat32LE(b []byte, v float32) []byte {
	u := math.Float32bits(v)
	return append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
}

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
	next := 0
	return func() caller {
		cc := conns[next%len(conns)]
		next++
		out := new(pb.ModelInferResponse)
		return func(ctx context.Context) error {
			out.Reset()
			if err := cc.Invoke(ctx, inferencepbconnect.GRPCInferenceServiceModelInferProcedure, msg, out); err != nil {
				return err
			}
			if len(out.Outputs) == 0 {
				return fmt.Errorf("answer without outputs")
			}
			return nil
		}
	}, closeAll, nil
}

func appendFloat32LE(b []byte, v float32) []byte {
	u := math.Float32bits(v)
	return append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
}

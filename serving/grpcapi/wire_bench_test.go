package grpcapi

import (
	"fmt"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
	"github.com/servekit/servekit/serving/oip"
)

// BenchmarkDecodeInfer is the native server's decode of a ModelInferRequest
// (decodeInfer with raw contents aliased, as nativeCodec calls it) on the
// fraud model's request: 1 and 256 rows of 8 FP32, raw and typed, and a
// request of 64 inputs and outputs, where counting the repeated fields
// weighs most. Compare before and after in one run (benchstat), and with
// callgrind for instruction counts:
//
//	go test -run '^$' -bench DecodeInfer -benchmem ./serving/grpcapi
func BenchmarkDecodeInfer(b *testing.B) {
	for _, tc := range []struct {
		name string
		msg  *pb.ModelInferRequest
	}{
		{"raw/rows=1", fraudMessage(1, true)},
		{"raw/rows=256", fraudMessage(256, true)},
		{"typed/rows=1", fraudMessage(1, false)},
		{"typed/rows=256", fraudMessage(256, false)},
		{"inputs=64", wideMessage(64)},
	} {
		wire, err := proto.Marshal(tc.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			var m pb.ModelInferRequest
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				if err := decodeInfer(wire, &m, oip.DefaultLimits, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func fraudMessage(rows int, raw bool) *pb.ModelInferRequest {
	in := &pb.ModelInferRequest_InferInputTensor{Name: "features", Datatype: "FP32", Shape: []int64{int64(rows), 8}}
	m := &pb.ModelInferRequest{ModelName: "fraud", Id: "42", Inputs: []*pb.ModelInferRequest_InferInputTensor{in},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "score"}}}
	vals := make([]float32, rows*8)
	for i := range vals {
		vals[i] = float32(i%17) * 0.25
	}
	if raw {
		m.RawInputContents = [][]byte{make([]byte, 4*len(vals))}
		return m
	}
	in.Contents = &pb.InferTensorContents{Fp32Contents: vals}
	return m
}

func wideMessage(n int) *pb.ModelInferRequest {
	m := &pb.ModelInferRequest{ModelName: "wide", Parameters: map[string]*pb.InferParameter{
		"priority": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 1}}}}
	for i := range n {
		name := fmt.Sprintf("x%d", i)
		m.Inputs = append(m.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "INT64", Shape: []int64{1, 1}})
		m.Outputs = append(m.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: "y" + strconv.Itoa(i)})
		m.RawInputContents = append(m.RawInputContents, make([]byte, 8))
	}
	return m
}

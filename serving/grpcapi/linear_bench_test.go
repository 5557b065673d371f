package grpcapi_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/servekit/servekit/serving/grpcapi"
	pb "github.com/servekit/servekit/serving/grpcapi/inferencepb"
)

// DecodeRequest's checks for repeated input and output names, at 1k, 10k
// and 60k items: ns/item must stay flat as n grows (issue 18 row 4).
//
//	go test -run '^$' -bench Linear ./serving/grpcapi
func BenchmarkLinearDecodeRequest(b *testing.B) {
	for _, n := range []int{1000, 10000, 60000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			msg := &pb.ModelInferRequest{ModelName: "m"}
			for i := range n {
				name := "i" + strconv.Itoa(i)
				msg.Inputs = append(msg.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "FP32", Shape: []int64{0}, Contents: &pb.InferTensorContents{}})
				msg.Outputs = append(msg.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: name})
			}
			if _, err := grpcapi.DecodeRequest(msg, 1<<20); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = grpcapi.DecodeRequest(msg, 1<<20)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
		})
	}
}

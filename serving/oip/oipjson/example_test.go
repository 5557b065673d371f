package oipjson_test

import (
	"fmt"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/serving/oip/oipjson"
)

// Both directions of both messages: a client encodes a request with its
// input as binary data, a server decodes it and answers, the client
// decodes the answer.
func Example() {
	x, _ := serving.NewTensor("x", []int64{1, 2}, []float32{0.5, -1})
	body, jsonLen := oipjson.AppendRequest(nil, &serving.Request{ID: "42", Inputs: []serving.Tensor{x}, Outputs: []string{"y"}}, true, oipjson.NonFiniteString)
	fmt.Printf("%s + %d raw bytes\n", body[:jsonLen], len(body)-jsonLen)

	var req oipjson.InferRequest // a server keeps one per request
	if err := oipjson.DecodeInferRequest(&req, body, jsonLen, oip.Limits{}); err != nil {
		panic(err)
	}
	in, _ := req.Request.Input("x")
	fmt.Println("server got", in.Data(), "and answers y in binary:", req.BinaryOutput(0))

	y, _ := serving.NewTensor("y", []int64{1}, []float32{0.25})
	answer, n := oipjson.AppendResponse(nil, &serving.Response{ID: req.Request.ID, Model: "m", Version: "1", Outputs: []serving.Tensor{y}}, &req, oipjson.NonFiniteString)
	resp, err := oipjson.DecodeResponse(answer, n, oip.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println("client got", resp.Outputs[0].Name, resp.Outputs[0].Data(), "from version", resp.Version)
	// Output:
	// {"id":"42","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"parameters":{"binary_data_size":8}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]} + 8 raw bytes
	// server got [0.5 -1] and answers y in binary: true
	// client got y [0.25] from version 1
}

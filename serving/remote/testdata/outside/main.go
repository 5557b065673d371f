// Command outside is a program of another module that uses servekit's
// client as a serving.Predictor, as a user's service would: it is built
// by TestOutsideModule in a module of its own, with servekit required
// through a replace of the checkout. It sends one request of edge values to
// the model named by its arguments and prints each output's name, datatype,
// shape and raw bits in hex, which the test compares with what the
// in-process model answers.
//
//	outside TARGET MODEL
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/remote"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: outside TARGET MODEL")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "outside:", err)
		os.Exit(1)
	}
}

func run(target, model string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var p serving.Predictor // the client is a Predictor like any other
	c, err := remote.Dial(ctx, target, model)
	if err != nil {
		return err
	}
	p = c
	defer serving.Close(p)
	req, err := request()
	if err != nil {
		return err
	}
	resp, err := p.Predict(ctx, req)
	if err != nil {
		return err
	}
	for _, t := range resp.Outputs {
		fmt.Printf("%s %v %v %s\n", t.Name, t.DataType, t.Shape, hex.EncodeToString(t.AppendRaw(nil)))
	}
	return nil
}

// request holds values a lossy client would change: a NaN with a
// payload, a negative zero, the extremes of FP32 and INT64, FP16 bits,
// bytes that are not UTF-8.
func request() (*serving.Request, error) {
	f32, err := serving.NewTensor("f32", []int64{2, 3}, []float32{
		math.Float32frombits(0x7fc00123), float32(math.Copysign(0, -1)), math.MaxFloat32,
		math.SmallestNonzeroFloat32, 0.1, -1.0 / 3})
	if err != nil {
		return nil, err
	}
	i64, err := serving.NewTensor("i64", []int64{3}, []int64{math.MinInt64, 1<<53 + 1, math.MaxInt64})
	if err != nil {
		return nil, err
	}
	f16, err := serving.NewFP16("f16", []int64{3}, []uint16{0x0001, 0x7bff, 0x7e01})
	if err != nil {
		return nil, err
	}
	b, err := serving.NewStrings("bytes", []int64{2}, []string{"\xff\xfe", "héllo"})
	if err != nil {
		return nil, err
	}
	return &serving.Request{ID: "outside", Inputs: []serving.Tensor{f32, i64, f16, b}}, nil
}

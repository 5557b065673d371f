package onnx_test

import (
	"context"
	"fmt"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/serving"
)

// Loading a model and scoring one row. (No Output line: it needs ONNX
// Runtime installed, which examples must not assume.)
func ExampleLoad() {
	m, err := onnx.Load("testdata/models/fraud.onnx", onnx.WithVersion("1"), onnx.WithWarmup(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	x, _ := serving.NewTensor("features", []int64{1, 8}, []float32{1.4, 0.95, 0.7, 0.4, 0.8, 0.2, 0, 0})
	resp, err := m.Predict(context.Background(), &serving.Request{Inputs: []serving.Tensor{x}})
	if err != nil {
		fmt.Println(err)
		return
	}
	score, _ := resp.Output("score")
	fmt.Println(score.Data())
}

// Load errors carry a serving.Code, so an HTTP layer can map them; the
// file is checked before ONNX Runtime is even loaded.
func ExampleLoad_errors() {
	_, err := onnx.Load("models/no-such-model.onnx")
	fmt.Println(serving.CodeOf(err))
	fmt.Println(err)
	// Output:
	// not_found
	// onnx: model "no-such-model": no file models/no-such-model.onnx
}

// One option list for GPU and CPU deployments: the CUDA options take
// effect with WithCUDA; WithCPUFallback serves on the CPU when CUDA cannot
// run, and the metadata says where the model runs. (No Output line: the
// answer depends on the machine.)
func ExampleWithCUDA() {
	opts := []onnx.Option{
		onnx.WithCUDAMemLimit(8 << 30),
		onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoHeuristic),
		onnx.WithCUDA(0),
		onnx.WithCPUFallback(),
	}
	m, err := onnx.Load("testdata/models/fraud.onnx", opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	fmt.Println("runs on", m.Metadata().Device) // "cuda:0", or "cpu"
	if why := m.FallbackReason(); why != nil {
		fmt.Println("no GPU:", why)
	}
}

// CUDA option mistakes fail the load on every machine, GPU or not, before
// ONNX Runtime is looked for.
func ExampleWithCUDAConvAlgoSearch() {
	_, err := onnx.LoadBytes("m", []byte("model bytes"), onnx.WithCUDA(0), onnx.WithCUDAConvAlgoSearch("FASTEST"))
	fmt.Println(serving.CodeOf(err))
	fmt.Println(err)
	// Output:
	// invalid_argument
	// onnx: model "m": cuDNN convolution algorithm search "FASTEST": want EXHAUSTIVE, HEURISTIC or DEFAULT
}

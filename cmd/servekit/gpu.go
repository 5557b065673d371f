package main

import (
	"github.com/servekit/servekit/backend/onnx"
)

// gpuOptions are the flags that put the models on a CUDA device. Off by
// default: a server that silently needed a GPU would fail on every CPU
// machine.
type gpuOptions struct {
	device   int
	memLimit int64
	convAlgo string
	fallback bool
}

// options are the backend options the flags ask for.
func (g *gpuOptions) options() []onnx.Option {
	if g.device < 0 {
		return nil
	}
	opts := []onnx.Option{onnx.WithCUDA(g.device), onnx.WithCUDAMemLimit(g.memLimit)}
	if g.convAlgo != "" {
		opts = append(opts, onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoSearch(g.convAlgo)))
	}
	if g.fallback {
		opts = append(opts, onnx.WithCPUFallback())
	}
	return opts
}

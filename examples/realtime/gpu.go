package main

import (
	"flag"
	"strconv"

	"github.com/servekit/servekit/backend/onnx"
)

// gpuOptions are the flags that put the models on a CUDA device.
type gpuOptions struct {
	device   int
	memLimit int64
	convAlgo string
	fallback bool
}

// gpuFlags registers the CUDA flags. Off by default: a server that
// silently needed a GPU would fail on every CPU machine.
func gpuFlags(fs *flag.FlagSet) *gpuOptions {
	g := &gpuOptions{}
	device, err := strconv.Atoi(env("SERVEKIT_CUDA_DEVICE", "-1"))
	if err != nil {
		device = -1
	}
	fs.IntVar(&g.device, "cuda", device, "run the models on this CUDA device ($SERVEKIT_CUDA_DEVICE; -1: on the CPU)")
	fs.Int64Var(&g.memLimit, "cuda-mem-limit", 0, "cap on each model's CUDA memory arena, in bytes (0: none)")
	fs.StringVar(&g.convAlgo, "cuda-conv-algo", "", "cuDNN convolution algorithm search: EXHAUSTIVE (ONNX Runtime's default), HEURISTIC or DEFAULT")
	fs.BoolVar(&g.fallback, "cpu-fallback", env("SERVEKIT_CPU_FALLBACK", "") == "1",
		"with -cuda, serve on the CPU (and log why) when CUDA cannot run, instead of failing ($SERVEKIT_CPU_FALLBACK=1)")
	return g
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

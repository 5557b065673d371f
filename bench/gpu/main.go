// Command gpu benchmarks servekit on CUDA against the CPU of the same
// machine and against ONNX Runtime alone, on compute-heavy generated
// networks (a wide MLP and a small conv net, FP32 and FP16), and prints a
// markdown report naming the GPU:
//
//   - throughput (rows/s) and p50/p99 latency of one-row requests from 1,
//     16 and 256 closed-loop callers, unbatched (Model.Predict) and
//     micro-batched (batch.New, one and two batches in flight), on the CPU
//     and on CUDA;
//   - raw ONNX Runtime (onnxruntime_go, preallocated tensors) running
//     pre-formed batches of -max-batch rows back to back: the ideal;
//   - the targets: micro-batched CUDA at least 10× the best CPU cell of the
//     same network, and at least 80 % of raw CUDA on pre-formed batches,
//     each printed with its ratio and whether it is met;
//   - where the time of one run goes at batch 1, 16 and -max-batch: raw
//     Run, an I/O binding, Model.Predict, and the transfer floor (a model
//     that moves the same bytes and computes almost nothing).
//
// scripts/gpu-check.sh builds it here and stages it for a GPU machine;
// there it runs as
//
//	gpubench -d 1500ms -o gpu-bench.md
//
// and on a machine without a GPU `gpubench -devices cpu` gives the CPU half.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/serving"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(1)
	}
}

type config struct {
	devices, nets, precs []string
	cpuPrecs             []string
	callers              []int
	scale                string
	warm, dur, maxDelay  time.Duration
	maxBatch, deviceID   int
	cpuThreads           int
	convAlgo             string
	requireGPU           bool
	movement             bool
	out                  string
}

func parse(args []string) (config, error) {
	fs := flag.NewFlagSet("gpubench", flag.ContinueOnError)
	devices := fs.String("devices", "cpu,cuda", "devices to measure: cpu, cuda")
	nets := fs.String("nets", "mlp,conv", "networks: mlp (1024→4096→4096→1024), conv (3×32×32, 64/128/256 channels)")
	precs := fs.String("precisions", "fp32,fp16", "precisions: fp32, fp16")
	cpuPrecs := fs.String("cpu-precisions", "fp32", "precisions measured on the CPU (FP16 matrix products run in a slow reference kernel on x86 CPUs)")
	callers := fs.String("callers", "1,16,256", "closed-loop callers per cell")
	c := config{}
	fs.StringVar(&c.scale, "scale", "full", "network sizes: full, or small (tests)")
	fs.DurationVar(&c.warm, "warmup", 300*time.Millisecond, "unmeasured warm-up of each cell")
	fs.DurationVar(&c.dur, "d", 2*time.Second, "measured time of each cell")
	fs.DurationVar(&c.maxDelay, "max-delay", 2*time.Millisecond, "batcher max delay")
	fs.IntVar(&c.maxBatch, "max-batch", 256, "batcher max rows, and the rows of raw pre-formed batches")
	fs.IntVar(&c.deviceID, "device", 0, "CUDA device id")
	fs.IntVar(&c.cpuThreads, "cpu-threads", 0, "intra-op threads of the CPU sessions that run batches (0: one per core)")
	fs.StringVar(&c.convAlgo, "conv-algo", "HEURISTIC", "cuDNN conv algorithm search: EXHAUSTIVE, HEURISTIC, DEFAULT")
	fs.BoolVar(&c.requireGPU, "require-gpu", false, "fail when CUDA cannot be used (instead of reporting CPU only)")
	fs.BoolVar(&c.movement, "movement", true, "measure where the time of one run goes")
	fs.StringVar(&c.out, "o", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.devices, c.nets, c.precs, c.cpuPrecs = split(*devices), split(*nets), split(*precs), split(*cpuPrecs)
	for _, s := range split(*callers) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4096 {
			return c, fmt.Errorf("-callers: %q is not a count in 1..4096", s)
		}
		c.callers = append(c.callers, n)
	}
	for _, d := range c.devices {
		if d != "cpu" && d != "cuda" {
			return c, fmt.Errorf("-devices: unknown device %q (cpu, cuda)", d)
		}
	}
	switch {
	case c.dur <= 0 || c.warm < 0:
		return c, errors.New("-d must be positive and -warmup not negative")
	case c.maxBatch < 1:
		return c, errors.New("-max-batch must be at least 1")
	case len(c.devices) == 0 || len(c.nets) == 0 || len(c.precs) == 0 || len(c.callers) == 0:
		return c, errors.New("nothing to measure")
	}
	return c, nil
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	nets, err := networks(c.scale, c.nets, c.precs)
	if err != nil {
		return err
	}
	version, err := onnx.InitRuntime("")
	if err != nil {
		return err
	}
	rep := &report{cfg: c, ortVersion: version, gpu: gpuName(c.deviceID), cpu: cpuName()}
	useCUDA := contains(c.devices, "cuda")
	if useCUDA {
		if why := cudaProbe(nets[0], c); why != nil {
			if c.requireGPU {
				return fmt.Errorf("CUDA unavailable (-require-gpu): %w", why)
			}
			rep.notes = append(rep.notes, "CUDA was asked for but is unavailable, so this report is CPU only: "+why.Error())
			useCUDA = false
		}
	}
	progress := func(r result) {
		fmt.Fprintf(os.Stderr, "%-5s %-5s %-5s %-18s c=%-4d %12.0f rows/s  p50 %-10v p99 %-10v %v\n",
			r.net, r.precision, r.device, r.mode, r.callers, r.rowsPerSec, r.p50, r.p99, errString(r.err))
	}
	for _, n := range nets {
		onCPU := contains(c.devices, "cpu") && contains(c.cpuPrecs, n.precision)
		if onCPU {
			rep.add(measureCPU(ctx, n, c, progress)...)
		}
		if useCUDA {
			rep.add(measureCUDA(ctx, n, c, progress)...)
		}
		if c.movement && (useCUDA || onCPU) {
			rep.moves = append(rep.moves, movement(n, c, useCUDA)...)
		}
	}
	text := rep.markdown()
	if _, err := io.WriteString(stdout, text); err != nil {
		return err
	}
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return rep.firstErr()
}

// cudaProbe loads the first network on CUDA and reports why it cannot run.
func cudaProbe(n network, c config) error {
	m, err := onnx.LoadBytes(n.name, n.model, onnx.WithCUDA(c.deviceID))
	if err != nil {
		return err
	}
	return m.Close()
}

// measureCPU: unbatched on a session with one intra-op thread per run
// (concurrency from the callers, the backend's default), micro-batched and
// raw on a session whose runs use every core.
func measureCPU(ctx context.Context, n network, c config, progress func(result)) []result {
	var out []result
	cell := recorder(n, "cpu", progress, &out)
	unb, err := onnx.LoadBytes(n.name, n.model)
	if err != nil {
		cell(result{err: err}, "load")
		return out
	}
	defer unb.Close()
	wide, err := onnx.LoadBytes(n.name, n.model, onnx.WithIntraOpThreads(c.cpuThreads))
	if err != nil {
		cell(result{err: err}, "load")
		return out
	}
	defer wide.Close()
	for _, k := range c.callers {
		cell(closedLoop(unb, n, k, c.warm, c.dur), "unbatched")
	}
	for _, k := range c.callers {
		cell(batched(ctx, wide, n, k, 1, c), "batched")
	}
	raw, err := newRawSession(n.model, n, false, 0, c.cpuThreads, "")
	if err != nil {
		cell(result{err: err}, "raw")
		return out
	}
	defer raw.Close()
	cell(raw.preformed(c.maxBatch, 1, c.warm, c.dur), "raw pre-formed")
	return out
}

// measureCUDA: one CUDA session serves the unbatched and micro-batched
// cells; raw ONNX Runtime runs pre-formed batches from one and from two
// goroutines (two keep the GPU busy while the host prepares a run).
func measureCUDA(ctx context.Context, n network, c config, progress func(result)) []result {
	var out []result
	cell := recorder(n, "cuda", progress, &out)
	m, err := onnx.LoadBytes(n.name, n.model, onnx.WithCUDA(c.deviceID), onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoSearch(c.convAlgo)))
	if err != nil {
		cell(result{err: err}, "load")
		return out
	}
	defer m.Close()
	for _, k := range c.callers {
		cell(closedLoop(m, n, k, c.warm, c.dur), "unbatched")
	}
	for _, fl := range []int{1, 2} {
		for _, k := range c.callers {
			cell(batched(ctx, m, n, k, fl, c), "batched fl"+strconv.Itoa(fl))
		}
	}
	raw, err := newRawSession(n.model, n, true, c.deviceID, 1, c.convAlgo)
	if err != nil {
		cell(result{err: err}, "raw")
		return out
	}
	defer raw.Close()
	for _, g := range []int{1, 2} {
		cell(raw.preformed(c.maxBatch, g, c.warm, c.dur), "raw pre-formed")
	}
	return out
}

// recorder returns the function that labels a cell, reports it and keeps
// it in out.
func recorder(n network, device string, progress func(result), out *[]result) func(result, string) {
	return func(r result, mode string) {
		r.net, r.precision, r.device, r.mode = n.name, n.precision, device, mode
		progress(r)
		*out = append(*out, r)
	}
}

// batched runs the closed loop through a micro-batcher with fl batches in
// flight.
func batched(ctx context.Context, p serving.Predictor, n network, callers, fl int, c config) result {
	b, err := batch.New(p, batch.WithMaxBatchRows(c.maxBatch), batch.WithMaxDelay(c.maxDelay),
		batch.WithMaxInFlight(fl), batch.WithMaxQueueRows(max(4*c.maxBatch, 2*callers)))
	if err != nil {
		return result{err: err}
	}
	r := closedLoop(b, n, callers, c.warm, c.dur)
	r.rowsPerBatch = b.Stats().MeanRows()
	if err := b.Shutdown(ctx); err != nil && r.err == nil {
		r.err = err
	}
	return r
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return "ERROR " + err.Error()
}

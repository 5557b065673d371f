// Command quant measures what model size buys on the CPU: the wide MLP
// (256→1024→1024→10, softmax), the CIFAR-sized conv net (3×32×32,
// 64/128/256 channels) and the demo fraud model (8→16→1, a few
// microseconds a call) in FP32, FP16 and INT8, built by
// internal/onnxbuild (INT8 quantized there, in Go, with activation ranges
// from a fixed calibration batch), each served by backend/onnx exactly as
// a user's model is. It prints a markdown report:
//
//   - accuracy: max and mean absolute error against FP32 and top-class
//     (argmax; for the fraud score, the 0.5 threshold) agreement on a
//     fixed input set, against each variant's stated bound;
//   - speed: one caller sending 1-row and 64-row requests back to back,
//     p50/p99 latency and rows/s per variant; within a cell the variants
//     take turns (eight each, round robin) so they share whatever load the
//     machine has, and each figure is also a ratio to FP32's in the same
//     round, reported as min–median–max over the rounds with the load
//     average;
//   - what ONNX Runtime runs: the operators of the graph it optimised,
//     which shows whether the QDQ pairs became integer kernels.
//
// Run it as
//
//	go run ./bench/quant -o quant.md
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
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quant:", err)
		os.Exit(1)
	}
}

type config struct {
	nets      []string
	variants  []string // timed variants; accuracy covers all
	batches   []int
	scale     string
	rounds    int
	warm, dur time.Duration
	out       string
}

func parse(args []string) (config, error) {
	fs := flag.NewFlagSet("quant", flag.ContinueOnError)
	nets := fs.String("nets", "mlp,conv,fraud", "networks: mlp, conv, fraud")
	variants := fs.String("variants", "fp32,fp16,fp16-in-fp32,int8,int8-unfused", "variants to time (fp32 always): fp16, fp16-in-fp32, int8, int8-unfused")
	batches := fs.String("batches", "1,64", "rows per request")
	c := config{}
	fs.StringVar(&c.scale, "scale", "full", "network sizes: full, or small (tests)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; every timed variant runs once per round")
	fs.DurationVar(&c.warm, "warmup", 200*time.Millisecond, "unmeasured warm-up of each cell")
	fs.DurationVar(&c.dur, "d", time.Second, "measured time of each variant in each cell, in eight turns")
	fs.StringVar(&c.out, "o", "", "also write the report to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.nets, c.variants = split(*nets), split(*variants)
	if len(c.variants) == 0 || c.variants[0] != "fp32" {
		c.variants = append([]string{"fp32"}, c.variants...)
	}
	for _, s := range split(*batches) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4096 {
			return c, fmt.Errorf("-batches: %q is not a row count in 1..4096", s)
		}
		c.batches = append(c.batches, n)
	}
	switch {
	case c.dur <= 0 || c.warm < 0:
		return c, errors.New("-d must be positive and -warmup not negative")
	case c.rounds < 1:
		return c, errors.New("-rounds must be at least 1")
	case len(c.nets) == 0 || len(c.batches) == 0:
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
	version, err := onnx.InitRuntime("")
	if err != nil {
		return err
	}
	rep := &report{cfg: c, ortVersion: version}
	var served []*served
	defer func() {
		for _, s := range served {
			s.close()
		}
	}()
	for _, name := range c.nets {
		n, err := build(name, c.scale)
		if err != nil {
			return err
		}
		s, err := serve(n)
		if err != nil {
			return err
		}
		served = append(served, s)
		acc, err := s.accuracy(ctx)
		if err != nil {
			return err
		}
		rep.accuracy = append(rep.accuracy, acc...)
		rep.kernels = append(rep.kernels, s.kernels...)
	}
	for round := range c.rounds {
		rep.loads = append(rep.loads, loadAverage())
		for _, s := range served {
			for _, rows := range c.batches {
				ts, err := s.measure(ctx, s.timed(c.variants), rows, c.warm, c.dur)
				if err != nil {
					return fmt.Errorf("%s %d rows: %w", s.net.name, rows, err)
				}
				for _, r := range ts {
					r.round = round
					fmt.Fprintf(os.Stderr, "round %d %-5s %-13s %4d rows  %10.0f rows/s  p50 %-10v p99 %v\n",
						round+1, r.net, r.variant, r.rows, r.rowsPerSec, r.p50, r.p99)
					rep.timings = append(rep.timings, r)
				}
			}
		}
	}
	rep.loads = append(rep.loads, loadAverage())
	text := rep.markdown()
	if _, err := io.WriteString(stdout, text); err != nil {
		return err
	}
	if c.out != "" {
		return os.WriteFile(c.out, []byte(text), 0o644)
	}
	return nil
}

// loadAverage is the 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	first, _, _ := strings.Cut(string(b), " ")
	return first
}

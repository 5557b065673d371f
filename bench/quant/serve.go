package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// served is a network with every variant loaded by backend/onnx.
type served struct {
	net     *network
	models  []*onnx.Model
	kernels []kernels
}

// kernels is what ONNX Runtime made of a variant: the summary of the
// optimised graph it wrote.
type kernels struct {
	net, variant string
	source, ran  onnxbuild.Summary
}

// serve loads every variant of n with the backend's defaults (one
// intra-op thread) and its optimisation level, keeping the graph ONNX
// Runtime optimised.
func serve(n *network) (*served, error) {
	dir, err := os.MkdirTemp("", "servekit-quant-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s := &served{net: n}
	for _, v := range n.variants {
		path := filepath.Join(dir, v.name+".onnx")
		m, err := onnx.LoadBytes(n.name+"-"+v.name, v.model, onnx.WithGraphOptimization(v.opt), onnx.WithOptimizedModelPath(path))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%s %s: %w", n.name, v.name, err)
		}
		s.models = append(s.models, m)
		k := kernels{net: n.name, variant: v.name}
		optimised, err := os.ReadFile(path)
		if err == nil {
			k.ran, err = onnxbuild.Summarize(optimised)
		}
		if err == nil {
			k.source, err = onnxbuild.Summarize(v.model)
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("%s %s: reading the optimised graph: %w", n.name, v.name, err)
		}
		s.kernels = append(s.kernels, k)
	}
	return s, nil
}

func (s *served) close() {
	for _, m := range s.models {
		m.Close()
	}
}

// timed is the indexes of the named variants that are timed, fp32 first.
func (s *served) timed(names []string) []int {
	var out []int
	for i, v := range s.net.variants {
		if v.timed && slices.Contains(names, v.name) {
			out = append(out, i)
		}
	}
	return out
}

// accuracy is one variant's error against FP32 on the accuracy set.
type accuracy struct {
	net, variant     string
	bytes            int
	maxAbs, meanAbs  float64
	maxRel           float64 // maxAbs / max |FP32 output|
	agree            float64 // share of rows with the same argmax
	bound            bound
	rows, calibRows  int
	fp32MaxMagnitude float64
}

func (a accuracy) met() bool { return a.maxRel <= a.bound.maxRel && a.agree >= a.bound.agree }

// outputs runs variant i on the whole accuracy set, 64 rows at a time.
func (s *served) outputs(ctx context.Context, i int) ([]float32, error) {
	n := s.net
	rows := len(n.accuracy) / n.rowSize
	var out []float32
	for first := 0; first < rows; first += 64 {
		resp, err := s.models[i].Predict(ctx, n.request(n.variants[i], n.accuracy, first, min(64, rows-first)))
		if err != nil {
			return nil, err
		}
		y, err := floats32(resp)
		if err != nil {
			return nil, err
		}
		out = append(out, y...)
	}
	return out, nil
}

// accuracy compares every variant with FP32 (variant 0).
func (s *served) accuracy(ctx context.Context) ([]accuracy, error) {
	n := s.net
	ref, err := s.outputs(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("%s fp32: %w", n.name, err)
	}
	rows := len(n.accuracy) / n.rowSize
	classes := len(ref) / rows
	var magnitude float64
	for _, v := range ref {
		magnitude = max(magnitude, math.Abs(float64(v)))
	}
	var out []accuracy
	for i, v := range n.variants {
		y, err := s.outputs(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", n.name, v.name, err)
		}
		if len(y) != len(ref) {
			return nil, fmt.Errorf("%s %s: %d outputs, FP32 gave %d", n.name, v.name, len(y), len(ref))
		}
		a := accuracy{net: n.name, variant: v.name, bytes: len(v.model), bound: v.bound, rows: rows,
			calibRows: len(n.calibration) / n.rowSize, fp32MaxMagnitude: magnitude}
		var sum float64
		same := 0
		for r := range rows {
			want, got := ref[r*classes:(r+1)*classes], y[r*classes:(r+1)*classes]
			for j := range want {
				d := math.Abs(float64(got[j] - want[j]))
				if math.IsNaN(d) {
					d = math.Inf(1)
				}
				a.maxAbs = max(a.maxAbs, d)
				sum += d
			}
			if decision(want) == decision(got) {
				same++
			}
		}
		a.meanAbs = sum / float64(len(ref))
		a.maxRel = a.maxAbs / magnitude
		a.agree = float64(same) / float64(rows)
		out = append(out, a)
	}
	return out, nil
}

// decision is the class a row's output picks: its argmax, or for a single
// output (a probability, as the fraud score) whether it reaches 0.5.
func decision(x []float32) int {
	if len(x) == 1 {
		if x[0] >= 0.5 {
			return 1
		}
		return 0
	}
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// timing is one cell of one round.
type timing struct {
	net, variant string
	round, rows  int
	calls        int
	rowsPerSec   float64
	p50, p99     time.Duration
}

// measure times the variants idx of one cell (rows-row requests, one
// caller, back to back) side by side: after a warm-up of each, it gives
// them turns of dur/turns each, round robin, so that every variant sees
// the same load on a shared machine, and a turn always makes at least one
// call (a slow variant's turn is one call).
func (s *served) measure(ctx context.Context, idx []int, rows int, warm, dur time.Duration) ([]timing, error) {
	const turns = 8
	n := s.net
	if avail := len(n.accuracy) / n.rowSize; rows > avail {
		return nil, fmt.Errorf("%d rows per request, the input set has %d", rows, avail)
	}
	reqs := make([]*serving.Request, len(idx))
	for j, i := range idx {
		reqs[j] = n.request(n.variants[i], n.accuracy, 0, rows)
	}
	call := func(j int) (time.Duration, error) {
		t0 := time.Now()
		_, err := s.models[idx[j]].Predict(ctx, reqs[j])
		return time.Since(t0), err
	}
	for j := range idx {
		for end := time.Now().Add(warm); time.Now().Before(end); {
			if _, err := call(j); err != nil {
				return nil, fmt.Errorf("%s: %w", n.variants[idx[j]].name, err)
			}
		}
	}
	lat := make([][]time.Duration, len(idx))
	spent := make([]time.Duration, len(idx))
	for range turns {
		for j := range idx {
			start := time.Now()
			for first := true; first || time.Since(start) < dur/turns; first = false {
				d, err := call(j)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", n.variants[idx[j]].name, err)
				}
				lat[j] = append(lat[j], d)
			}
			spent[j] += time.Since(start)
		}
	}
	out := make([]timing, len(idx))
	for j, i := range idx {
		l := slices.Sorted(slices.Values(lat[j]))
		q := func(f float64) time.Duration { return l[int(f*float64(len(l)-1))] }
		out[j] = timing{net: n.name, variant: n.variants[i].name, rows: rows, calls: len(l),
			rowsPerSec: float64(rows*len(l)) / spent[j].Seconds(), p50: q(0.5), p99: q(0.99)}
	}
	return out, nil
}

package main

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/servekit/servekit/internal/onnxbuild"
)

type report struct {
	cfg        config
	ortVersion string
	loads      []string // at the start of each round, and at the end
	accuracy   []accuracy
	timings    []timing
	kernels    []kernels
}

func (r *report) markdown() string {
	var b strings.Builder
	c := r.cfg
	fmt.Fprintf(&b, "## Model size on the CPU: FP16 and INT8 against FP32 (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "- CPU: %s, %d logical cores; ONNX Runtime %s, Go %s; %s networks; one intra-op thread per session (the backend's default)\n",
		cpuName(), runtime.NumCPU(), r.ortVersion, runtime.Version(), c.scale)
	fmt.Fprintf(&b, "- %d rounds; in each cell the variants take eight turns each, round robin, %v per variant after %v of warm-up; load average (1 min) at each round's start and at the end: %s\n",
		c.rounds, c.dur, c.warm, strings.Join(r.loads, ", "))
	r.accuracyTable(&b)
	r.speedTable(&b)
	r.kernelTable(&b)
	return b.String()
}

func (r *report) accuracyTable(b *strings.Builder) {
	if len(r.accuracy) == 0 {
		return
	}
	a0 := r.accuracy[0]
	fmt.Fprintf(b, "\n### Accuracy against FP32\n\nInputs drawn from N(0, 1), fixed seeds; INT8 calibrated on a separate set. Error relative to the largest FP32 output (%s: %d rows, calibration %d).\n\n",
		a0.net, a0.rows, a0.calibRows)
	b.WriteString("| network | variant | model size | max abs error | mean abs error | max error / max FP32 | argmax agreement | stated bound | met |\n|---|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, a := range r.accuracy {
		bound, met := "reference", ""
		if a.variant != "fp32" {
			bound = fmt.Sprintf("≤ %.2g, ≥ %.0f%%", a.bound.maxRel, 100*a.bound.agree)
			met = "yes"
			if !a.met() {
				met = "**no**"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.3g | %.3g | %.3g | %.1f%% | %s | %s |\n",
			a.net, a.variant, size(a.bytes), a.maxAbs, a.meanAbs, a.maxRel, 100*a.agree, bound, met)
	}
}

// speedTable: medians over rounds, and each round's ratio to FP32's
// rows/s in the same round as min–median–max.
func (r *report) speedTable(b *strings.Builder) {
	if len(r.timings) == 0 {
		return
	}
	b.WriteString("\n### Speed: one caller, requests back to back\n\np50, p99 and rows/s are medians over the rounds. The speed-ups are over FP32 in the same round, min–median–max over the rounds: of rows/s, and of p50 latency (FP32's p50 over the variant's), which a loaded machine disturbs less.\n\n")
	b.WriteString("| network | variant | rows/request | p50 | p99 | rows/s | rows/s vs fp32 | p50 vs fp32 |\n|---|---|---:|---:|---:|---:|---|---|\n")
	type cell struct {
		net, variant string
		rows         int
	}
	byCell := map[cell][]timing{}
	var order []cell
	for _, t := range r.timings {
		k := cell{t.net, t.variant, t.rows}
		if _, ok := byCell[k]; !ok {
			order = append(order, k)
		}
		byCell[k] = append(byCell[k], t)
	}
	slices.SortStableFunc(order, func(x, y cell) int {
		if x.net != y.net {
			return strings.Compare(x.net, y.net)
		}
		return x.rows - y.rows
	})
	for _, k := range order {
		ts := byCell[k]
		ref := byCell[cell{k.net, "fp32", k.rows}]
		var p50s, p99s []time.Duration
		var rates, ratios, latRatios []float64
		for _, t := range ts {
			p50s, p99s, rates = append(p50s, t.p50), append(p99s, t.p99), append(rates, t.rowsPerSec)
			for _, f := range ref {
				if f.round == t.round {
					ratios = append(ratios, t.rowsPerSec/f.rowsPerSec)
					latRatios = append(latRatios, float64(f.p50)/float64(t.p50))
				}
			}
		}
		ratio, latRatio := "1", "1"
		if k.variant != "fp32" {
			ratio, latRatio = spreadString(ratios), spreadString(latRatios)
		}
		fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %.0f | %s | %s |\n",
			k.net, k.variant, k.rows, dur(median(p50s)), dur(median(p99s)), median(rates), ratio, latRatio)
	}
}

func (r *report) kernelTable(b *strings.Builder) {
	if len(r.kernels) == 0 {
		return
	}
	b.WriteString("\n### What ONNX Runtime runs\n\nOperators of the model as built, and of the graph ONNX Runtime optimised from it (the kernels a run executes; `ms.` is ONNX Runtime's own com.microsoft domain).\n\n")
	b.WriteString("| network | variant | model | optimised by ONNX Runtime |\n|---|---|---|---|\n")
	for _, k := range r.kernels {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", k.net, k.variant, ops(k.source), ops(k.ran))
	}
}

// ops lists a summary's operators with their counts, and its initializers
// by element type.
func ops(s onnxbuild.Summary) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(s.Ops)) {
		parts = append(parts, fmt.Sprintf("%s×%d", strings.Replace(op, "com.microsoft.", "ms.", 1), s.Ops[op]))
	}
	var inits []string
	for _, t := range slices.Sorted(maps.Keys(s.Initializers)) {
		inits = append(inits, fmt.Sprintf("%v×%d", t, s.Initializers[t]))
	}
	return strings.Join(parts, " ") + "; weights " + strings.Join(inits, " ")
}

// spreadString is min – **median** – max of v.
func spreadString(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	s := slices.Sorted(slices.Values(v))
	return fmt.Sprintf("%.2f× – **%.2f×** – %.2f×", s[0], median(s), s[len(s)-1])
}

func median[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func size(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f kB", float64(n)/(1<<10))
}

func cpuName() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

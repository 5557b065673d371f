package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/backend/onnx"
)

// Targets of issue 12, for micro-batched CUDA.
const (
	targetVsCPU = 10.0 // × the best CPU cell of the same network
	targetVsRaw = 0.80 // of raw CUDA on pre-formed batches
)

type report struct {
	cfg        config
	ortVersion string
	gpu, cpu   string
	notes      []string
	results    []result
	moves      []move
}

func (r *report) add(rs ...result) { r.results = append(r.results, rs...) }

func (r *report) firstErr() error {
	var errs []error
	for _, x := range r.results {
		if x.err != nil {
			errs = append(errs, fmt.Errorf("%s %s %s %s c=%d: %w", x.net, x.precision, x.device, x.mode, x.callers, x.err))
		}
	}
	for _, m := range r.moves {
		if m.err != nil {
			errs = append(errs, fmt.Errorf("movement %s %s %s batch %d: %w", m.net, m.precision, m.device, m.rows, m.err))
		}
	}
	return errors.Join(errs...)
}

func (r *report) markdown() string {
	var b strings.Builder
	c := r.cfg
	fmt.Fprintf(&b, "## servekit GPU benchmark (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "- GPU: %s\n- CPU: %s, %d logical cores\n- ONNX Runtime %s, %s, Go %s\n", r.gpu, r.cpu, runtime.NumCPU(), r.ortVersion, c.scale+" networks", runtime.Version())
	fmt.Fprintf(&b, "- one-row requests from closed-loop callers, %v per cell after %v of warm-up; batcher: max %d rows, max delay %v; cuDNN conv algo search %s\n",
		c.dur, c.warm, c.maxBatch, c.maxDelay, c.convAlgo)
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- **%s**\n", n)
	}
	b.WriteString("\n| network | precision | device | mode | callers | rows/s | p50 | p99 | rows/batch |\n|---|---|---|---|---:|---:|---:|---:|---:|\n")
	for _, x := range r.results {
		if x.err != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | error: %v | | | |\n", x.net, x.precision, x.device, x.mode, x.callers, x.err)
			continue
		}
		perBatch := ""
		if x.rowsPerBatch > 0 {
			perBatch = fmt.Sprintf("%.1f", x.rowsPerBatch)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %.0f | %s | %s | %s |\n",
			x.net, x.precision, x.device, x.mode, x.callers, x.rowsPerSec, dur(x.p50), dur(x.p99), perBatch)
	}
	b.WriteString("\nraw pre-formed: onnxruntime_go alone running batches of max-batch rows back to back from 1 or 2 goroutines (callers column), preallocated tensors; latency per batch.\n")
	r.targets(&b)
	r.movementTable(&b)
	return b.String()
}

// targets prints, per network and precision, the two ratios of the issue.
func (r *report) targets(b *strings.Builder) {
	b.WriteString("\n### Targets (micro-batched CUDA)\n\n")
	b.WriteString("| network | precision | micro-batched CUDA rows/s | best CPU rows/s | × CPU (≥ 10×) | raw CUDA pre-formed rows/s | of raw (≥ 80 %) |\n|---|---|---:|---:|---:|---:|---:|\n")
	seen := map[string]bool{}
	for _, x := range r.results {
		key := x.net + "/" + x.precision
		if seen[key] {
			continue
		}
		seen[key] = true
		batched := r.best(func(y result) bool {
			return y.net == x.net && y.precision == x.precision && y.device == "cuda" && strings.HasPrefix(y.mode, "batched")
		})
		cpu := r.best(func(y result) bool { return y.net == x.net && y.device == "cpu" })
		raw := r.best(func(y result) bool {
			return y.net == x.net && y.precision == x.precision && y.device == "cuda" && y.mode == "raw pre-formed"
		})
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", x.net, x.precision, rate(batched), rate(cpu),
			verdict(batched, cpu, targetVsCPU, "×"), rate(raw), verdict(batched, raw, targetVsRaw, "%"))
	}
	b.WriteString("\nbest CPU: the fastest CPU cell of the network in any precision and mode (unbatched, micro-batched, raw pre-formed).\n")
}

func (r *report) best(match func(result) bool) float64 {
	best := 0.0
	for _, x := range r.results {
		if x.err == nil && match(x) {
			best = max(best, x.rowsPerSec)
		}
	}
	return best
}

func rate(v float64) string {
	if v == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%.0f", v)
}

func verdict(num, den, target float64, unit string) string {
	if num == 0 || den == 0 {
		return "n/a"
	}
	ratio, met := num/den, "met"
	if ratio < target {
		met = "**NOT met**"
	}
	if unit == "%" {
		return fmt.Sprintf("%.0f %% (%s)", 100*ratio, met)
	}
	return fmt.Sprintf("%.1f× (%s)", ratio, met)
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

// move is where the time of one run of one batch goes.
type move struct {
	net, precision, device string
	rows                   int
	inBytes, outBytes      int
	raw, bound, predict    time.Duration
	floor                  time.Duration // the thin model, raw Run
	err                    error
}

// movement times one run at batch 1, 16 (or less) and max-batch: raw Run, I/O
// binding, Model.Predict, and the thin model's raw Run (the same
// transfers with almost no compute), on CUDA when it is used, else on
// the CPU.
func movement(n network, c config, cuda bool) []move {
	device := "cpu"
	if cuda {
		device = "cuda"
	}
	var out []move
	fail := func(err error) []move {
		return append(out, move{net: n.name, precision: n.precision, device: device, err: err})
	}
	opts := []onnx.Option{onnx.WithIntraOpThreads(c.cpuThreads)}
	if cuda {
		opts = []onnx.Option{onnx.WithCUDA(c.deviceID), onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoSearch(c.convAlgo))}
	}
	m, err := onnx.LoadBytes(n.name, n.model, opts...)
	if err != nil {
		return fail(err)
	}
	defer m.Close()
	raw, err := newRawSession(n.model, n, cuda, c.deviceID, c.cpuThreads, c.convAlgo)
	if err != nil {
		return fail(err)
	}
	defer raw.Close()
	thin, err := newRawSession(n.thin, n, cuda, c.deviceID, c.cpuThreads, c.convAlgo)
	if err != nil {
		return fail(err)
	}
	defer thin.Close()
	per := max(c.dur/4, 50*time.Millisecond)
	warm := min(c.warm, per)
	for _, rows := range uniq(1, min(16, c.maxBatch), c.maxBatch) {
		mv := move{net: n.name, precision: n.precision, device: device, rows: rows}
		in, outB := n.bytesPerRow()
		mv.inBytes, mv.outBytes = in*rows, outB*rows
		mv.err = func() error {
			rng := rand.New(rand.NewPCG(uint64(rows), 11))
			v, err := raw.values(rows, rng)
			if err != nil {
				return err
			}
			defer v.Destroy()
			if mv.raw, err = runTime(warm, per, func() error { return raw.s.Run([]ort.Value{v.in}, []ort.Value{v.out}) }); err != nil {
				return err
			}
			runBound, done, err := raw.bound(v)
			if err != nil {
				return err
			}
			defer done()
			if mv.bound, err = runTime(warm, per, runBound); err != nil {
				return err
			}
			req := n.request(rows, rng)
			if mv.predict, err = runTime(warm, per, func() error { _, err := m.Predict(context.Background(), req); return err }); err != nil {
				return err
			}
			tv, err := thin.values(rows, rng)
			if err != nil {
				return err
			}
			defer tv.Destroy()
			mv.floor, err = runTime(warm, per, func() error { return thin.s.Run([]ort.Value{tv.in}, []ort.Value{tv.out}) })
			return err
		}()
		out = append(out, mv)
	}
	return out
}

func uniq(v ...int) []int {
	var out []int
	for _, x := range v {
		if len(out) == 0 || x > out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

func (r *report) movementTable(b *strings.Builder) {
	if len(r.moves) == 0 {
		return
	}
	b.WriteString("\n### Where the time of one run goes\n\n")
	b.WriteString("| network | precision | device | batch | bytes in / out | raw Run | I/O binding | Predict | transfer floor | floor / raw |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range r.moves {
		if m.err != nil {
			fmt.Fprintf(b, "| %s | %s | %s | %d | | error: %v | | | | |\n", m.net, m.precision, m.device, m.rows, m.err)
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %s / %s | %s | %s | %s | %s | %.0f %% |\n", m.net, m.precision, m.device, m.rows,
			size(m.inBytes), size(m.outBytes), dur(m.raw), dur(m.bound), dur(m.predict), dur(m.floor), 100*float64(m.floor)/float64(max(m.raw, 1)))
	}
	b.WriteString("\nraw Run: onnxruntime_go with preallocated input and output; I/O binding: the same through an OrtIoBinding, input bound again each run; " +
		"Predict: servekit's Model.Predict (validation, tensor wrapping, output allocation); transfer floor: raw Run of a model with the same " +
		"input and output that computes almost nothing (Neg, or a global average pool), i.e. host↔device copies plus launch and sync.\n")
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// gpuName asks nvidia-smi for the device's name, memory and driver.
func gpuName(id int) string {
	out, err := exec.Command("nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader", "-i", fmt.Sprint(id)).Output()
	if err != nil {
		return "none (nvidia-smi: " + err.Error() + ")"
	}
	f := strings.Split(strings.TrimSpace(string(out)), ", ")
	if len(f) == 3 {
		return fmt.Sprintf("%s (%s, driver %s)", f[0], f[1], f[2])
	}
	return strings.TrimSpace(string(out))
}

// cpuName is the CPU model from /proc/cpuinfo.
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

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/servekit/servekit/internal/orttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCPUReport runs the program on small networks for a few
// milliseconds a cell and checks that every cell, the targets and the
// movement table are in the report, without errors.
func TestCPUReport(t *testing.T) {
	orttest.Require(t)
	out := filepath.Join(t.TempDir(), "report.md")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"-devices", "cpu", "-scale", "small", "-d", "40ms", "-warmup", "10ms",
		"-callers", "1,4", "-max-batch", "8", "-precisions", "fp32,fp16", "-cpu-precisions", "fp32,fp16", "-o", out}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	text := stdout.String()
	file, _ := os.ReadFile(out)
	if string(file) != text {
		t.Error("the -o file differs from stdout")
	}
	for _, want := range []string{
		"- GPU: ", "| network | precision | device | mode | callers | rows/s | p50 | p99 | rows/batch |",
		"| mlp | fp32 | cpu | unbatched | 1 |", "| mlp | fp16 | cpu | batched | 4 |", "| conv | fp32 | cpu | raw pre-formed | 1 |",
		"### Targets (micro-batched CUDA)", "| conv | fp16 | not measured |",
		"### Where the time of one run goes", "| mlp | fp16 | cpu | 8 | 512 B / 512 B |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "error") || strings.Contains(text, " | 0 | ") {
		t.Errorf("report has errors:\n%s", text)
	}
	// 2 networks × 2 precisions × (2 unbatched + 2 batched + 1 raw) cells,
	// and 2 × 2 × 2 movement rows (batch 1 and 8).
	if n := strings.Count(text, " | cpu | "); n != 20+8 {
		t.Errorf("%d cpu rows, want 20 cells and 8 movement rows:\n%s", n, text)
	}
}

// TestCUDAMissing: where CUDA cannot run the report says so and is CPU
// only, and -require-gpu turns that into a failure naming the cause.
func TestCUDAMissing(t *testing.T) {
	orttest.Require(t)
	if out, err := exec.Command("nvidia-smi", "-L").Output(); err == nil && strings.Contains(string(out), "GPU ") {
		t.Skip("this machine has a GPU")
	}
	var stdout bytes.Buffer
	args := []string{"-devices", "cuda", "-scale", "small", "-nets", "mlp", "-precisions", "fp32", "-d", "10ms", "-movement=false"}
	if err := run(context.Background(), args, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "CUDA was asked for but is unavailable, so this report is CPU only") {
		t.Errorf("report:\n%s", stdout.String())
	}
	err := run(context.Background(), append(args, "-require-gpu"), &stdout)
	if err == nil || !strings.Contains(err.Error(), "CUDA unavailable (-require-gpu)") || !strings.Contains(err.Error(), "WithCUDA") {
		t.Errorf("-require-gpu: %v", err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-devices", "tpu"}, {"-callers", "0"}, {"-callers", "x"}, {"-d", "0s"}, {"-max-batch", "0"}, {"-nets", ""},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := networks("huge", []string{"mlp"}, []string{"fp32"}); err == nil {
		t.Error("unknown scale: no error")
	}
	if _, err := networks("small", []string{"resnet"}, []string{"fp32"}); err == nil {
		t.Error("unknown network: no error")
	}
	if _, err := networks("small", []string{"mlp"}, []string{"int8"}); err == nil {
		t.Error("unknown precision: no error")
	}
}

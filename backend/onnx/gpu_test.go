package onnx_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/serving"
)

// The tests named TestGPU… need an NVIDIA GPU with CUDA 13 and cuDNN 9 and
// the CUDA provider beside ONNX Runtime. Elsewhere they skip and say why;
// SERVEKIT_REQUIRE_GPU=1 (the GPU run of scripts/gpu-check.sh) turns the
// skip into a failure. SERVEKIT_GPU_DEVICE picks the device (default 0).
// They need no -race: the race detector does not see into CUDA, and the
// concurrency of Predict itself is covered by the CPU tests under -race.

// gpuDevice is the CUDA device the GPU tests use.
func gpuDevice() int {
	d, err := strconv.Atoi(os.Getenv("SERVEKIT_GPU_DEVICE"))
	if err != nil {
		return 0
	}
	return d
}

// requireGPU skips t, or fails it under SERVEKIT_REQUIRE_GPU=1, unless a
// model loads on CUDA here.
func requireGPU(t *testing.T) {
	t.Helper()
	requireORT(t)
	missing := func(why string) {
		t.Helper()
		if os.Getenv("SERVEKIT_REQUIRE_GPU") == "1" {
			t.Fatalf("GPU required (SERVEKIT_REQUIRE_GPU=1): %s", why)
		}
		t.Skipf("no GPU to test on: %s", why)
	}
	if !gpuPresent() {
		missing("nvidia-smi is missing or lists no GPU")
	}
	b, _ := onnxbuild.FraudMLP()
	m, err := onnx.LoadBytes("probe", b, onnx.WithCUDA(gpuDevice()))
	if err != nil {
		missing(err.Error())
	}
	m.Close()
}

// loadOn loads a generated model on the CPU, or on the GPU when cuda.
func loadOn(t *testing.T, name string, b []byte, cuda bool, opts ...onnx.Option) *onnx.Model {
	t.Helper()
	if cuda {
		opts = append(opts, onnx.WithCUDA(gpuDevice()))
	}
	m, err := onnx.LoadBytes(name, b, opts...)
	if err != nil {
		t.Fatalf("LoadBytes %s (cuda %v): %v", name, cuda, err)
	}
	t.Cleanup(func() { m.Close() })
	want := onnx.DeviceCPU
	if cuda {
		want = "cuda:" + strconv.Itoa(gpuDevice())
	}
	if d := m.Metadata().Device; d != want {
		t.Fatalf("%s: device %q, want %q", name, d, want)
	}
	return m
}

// sameAnswers runs req on both models and compares every output.
func sameAnswers(ctx context.Context, gpu, cpu *onnx.Model, req *serving.Request, tol tolerance) error {
	got, err := gpu.Predict(ctx, req)
	if err != nil {
		return fmt.Errorf("CUDA: %w", err)
	}
	want, err := cpu.Predict(ctx, req)
	if err != nil {
		return fmt.Errorf("CPU: %w", err)
	}
	if len(got.Outputs) != len(want.Outputs) {
		return fmt.Errorf("CUDA gave %d outputs, CPU %d", len(got.Outputs), len(want.Outputs))
	}
	for i := range want.Outputs {
		if err := closeTo(got.Outputs[i], want.Outputs[i], tol); err != nil {
			return err
		}
	}
	return nil
}

// TestGPUMatchesCPU: every generated test model (the demo fraud MLP, an
// MLP and a conv net in FP32, FP16 and FP16 behind FP32 casts, the
// multi-IO model whose string output runs on the CPU, and Identity of
// every datatype) answers on CUDA what it answers on the CPU, within the
// precision's tolerance (bit for bit where nothing is computed).
func TestGPUMatchesCPU(t *testing.T) {
	requireGPU(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tm := range testModels() {
		t.Run(tm.name, func(t *testing.T) {
			b, err := tm.build()
			if err != nil {
				t.Fatal(err)
			}
			gpu, cpu := loadOn(t, tm.name, b, true), loadOn(t, tm.name, b, false)
			for _, rows := range []int{1, 7, 64} {
				if err := sameAnswers(context.Background(), gpu, cpu, tm.request(rows, rng), tolCUDA(tm.tol)); err != nil {
					t.Errorf("%d rows: %v", rows, err)
				}
			}
		})
	}
}

// TestGPUOptions: every CUDA option reaches the provider and the model
// still answers as on the CPU; with TF32 off, FP32 matrix products match
// the CPU closely. Options the provider refuses are InvalidArgument even
// with the fall back.
func TestGPUOptions(t *testing.T) {
	requireGPU(t)
	rng := rand.New(rand.NewPCG(5, 6))
	conv := testModelNamed(t, "conv/fp32")
	b, err := conv.build()
	if err != nil {
		t.Fatal(err)
	}
	cpu := loadOn(t, "conv", b, false)
	for name, opts := range map[string][]onnx.Option{
		"exhaustive":   {onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoExhaustive)},
		"heuristic":    {onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoHeuristic)},
		"default-algo": {onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoDefault)},
		"copy-streams": {onnx.WithCUDACopyInDefaultStream(false)},
		"arena-exact":  {onnx.WithCUDAArenaExtendStrategy(onnx.ArenaSameAsRequested), onnx.WithCUDAMemLimit(1 << 30)},
	} {
		t.Run(name, func(t *testing.T) {
			gpu := loadOn(t, "conv", b, true, opts...)
			for _, rows := range []int{1, 33} {
				if err := sameAnswers(context.Background(), gpu, cpu, conv.request(rows, rng), tolCUDA(conv.tol)); err != nil {
					t.Errorf("%d images: %v", rows, err)
				}
			}
		})
	}
	t.Run("no-tf32", func(t *testing.T) {
		mlp := testModelNamed(t, "mlp/fp32")
		b, err := mlp.build()
		if err != nil {
			t.Fatal(err)
		}
		gpu := loadOn(t, "mlp", b, true, onnx.WithCUDAProviderOption("use_tf32", "0"))
		cpu := loadOn(t, "mlp", b, false)
		if err := sameAnswers(context.Background(), gpu, cpu, mlp.request(64, rng), tolerance{abs: 1e-4, rel: 1e-4}); err != nil {
			t.Error(err)
		}
	})
	for _, kv := range [][2]string{{"no_such_option", "1"}, {"cudnn_conv_algo_search", "FASTEST"}} {
		_, err := onnx.LoadBytes("conv", b, onnx.WithCUDA(gpuDevice()), onnx.WithCPUFallback(), onnx.WithCUDAProviderOption(kv[0], kv[1]))
		wantErr(t, err, serving.InvalidArgument, "bad CUDA provider option")
	}
}

// TestGPUBadDevice: a device id the machine does not have is CUDA being
// unavailable, not a model error.
func TestGPUBadDevice(t *testing.T) {
	requireGPU(t)
	b, _ := onnxbuild.FraudMLP()
	_, err := onnx.LoadBytes("fraud", b, onnx.WithCUDA(99))
	wantErr(t, err, serving.Unavailable, "CUDA device 99 requested")
	if !errors.Is(err, onnx.ErrCUDAUnavailable) {
		t.Errorf("%v does not wrap ErrCUDAUnavailable", err)
	}
	m, err := onnx.LoadBytes("fraud", b, onnx.WithCUDA(99), onnx.WithCPUFallback(), onnx.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Metadata().Device != "cpu" || m.FallbackReason() == nil {
		t.Errorf("device %q, reason %v after a fall back from device 99", m.Metadata().Device, m.FallbackReason())
	}
}

// TestGPUConcurrentPredict: 64 goroutines share one CUDA session of each
// network, with batches of 1 to 48 rows, and every answer matches the CPU
// session's answer to the same request.
func TestGPUConcurrentPredict(t *testing.T) {
	requireGPU(t)
	for _, name := range []string{"mlp/fp32", "conv/fp32", "mlp/fp16", "conv/fp16"} {
		tm := testModelNamed(t, name)
		t.Run(tm.name, func(t *testing.T) {
			b, err := tm.build()
			if err != nil {
				t.Fatal(err)
			}
			gpu, cpu := loadOn(t, tm.name, b, true), loadOn(t, tm.name, b, false)
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 64 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					for range 25 {
						if err := sameAnswers(context.Background(), gpu, cpu, tm.request(1+rng.IntN(48), rng), tolCUDA(tm.tol)); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestGPUCloseFreesMemory loads a 168 MB MLP on the GPU, runs it and
// closes it, four times: the device's used memory (nvidia-smi) must rise by
// at least three quarters of the weights while it is loaded and come back,
// within 64 MiB, to what it was after the first round. The first round is
// the baseline because CUDA keeps what it loads into the process's context
// for good (the context itself, kernels loaded lazily on first use), which
// no Close can or should return; what a session holds must not stay.
func TestGPUCloseFreesMemory(t *testing.T) {
	requireGPU(t)
	b, err := onnxbuild.RandomMLP("big", []int{1024, 4096, 4096, 4096, 1024}, "", 13)
	if err != nil {
		t.Fatal(err)
	}
	const weights = 168 << 20
	var base int64
	for round := range 4 {
		before := gpuMemUsed(t)
		m, err := onnx.LoadBytes("big", b, onnx.WithCUDA(gpuDevice()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Predict(context.Background(), testRows("input", 256, 1024)); err != nil {
			t.Fatal(err)
		}
		loaded := gpuMemUsed(t)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		closed := gpuMemUsed(t)
		t.Logf("round %d: before %d MiB, loaded %d MiB, closed %d MiB", round, before>>20, loaded>>20, closed>>20)
		if loaded < before+weights*3/4 {
			t.Errorf("round %d: the loaded model used %d MiB more, want at least %d MiB", round, (loaded-before)>>20, weights*3/4>>20)
		}
		if round == 0 {
			base = closed
			continue
		}
		if closed > base+64<<20 {
			t.Errorf("round %d: after Close %d MiB more are used than after the first round", round, (closed-base)>>20)
		}
	}
}

func testModelNamed(t *testing.T, name string) testModel {
	for _, tm := range testModels() {
		if tm.name == name {
			return tm
		}
	}
	t.Fatalf("no test model %q", name)
	return testModel{}
}

// gpuMemUsed is the used memory of the test's device, in bytes.
func gpuMemUsed(t *testing.T) int64 {
	t.Helper()
	out, err := exec.Command("nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", strconv.Itoa(gpuDevice())).Output()
	if err != nil {
		t.Fatalf("nvidia-smi: %v", err)
	}
	mib, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("nvidia-smi memory.used %q: %v", out, err)
	}
	return mib << 20
}

// testRows is a request of rows rows of width FP32 features.
func testRows(name string, rows, width int) *serving.Request {
	x := make([]float32, rows*width)
	for i := range x {
		x[i] = float32(i%13)/6 - 1
	}
	t, err := serving.NewTensor(name, []int64{int64(rows), int64(width)}, x)
	if err != nil {
		panic(err)
	}
	return &serving.Request{Inputs: []serving.Tensor{t}}
}

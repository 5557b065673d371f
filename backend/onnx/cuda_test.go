package onnx_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/internal/orttest"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/servingtest"
)

// These tests cover what CPU machines and CI see of the CUDA options: bad
// values, a missing provider or CUDA, and the fall back to the CPU. What
// needs a GPU is in gpu_test.go.

func TestCUDAOptionMistakes(t *testing.T) {
	// No ONNX Runtime needed: options are checked before it is looked for.
	cases := []struct {
		opts []onnx.Option
		says string
	}{
		{[]onnx.Option{onnx.WithCUDA(-1)}, "device id -1"},
		{[]onnx.Option{onnx.WithCUDA(0), onnx.WithCUDAMemLimit(-5)}, "memory limit -5"},
		{[]onnx.Option{onnx.WithCUDA(0), onnx.WithCUDAConvAlgoSearch("FASTEST")}, `"FASTEST": want EXHAUSTIVE, HEURISTIC or DEFAULT`},
		{[]onnx.Option{onnx.WithCUDA(0), onnx.WithCUDAArenaExtendStrategy("grow")}, `"grow": want kNextPowerOfTwo or kSameAsRequested`},
		{[]onnx.Option{onnx.WithCUDA(0), onnx.WithCUDAProviderOption("", "1")}, "empty key"},
		// A bad option with the fall back still fails: falling back would
		// hide the mistake.
		{[]onnx.Option{onnx.WithCUDA(-2), onnx.WithCPUFallback()}, "device id -2"},
	}
	for _, c := range cases {
		_, err := onnx.LoadBytes("m", []byte("not read"), c.opts...)
		wantErr(t, err, serving.InvalidArgument, `model "m"`, c.says)
	}
	// Without WithCUDA the CUDA options are inert: one option list serves
	// CPU and GPU deployments.
	m := loadFraud(t, onnx.WithCUDAMemLimit(1<<30), onnx.WithCUDAConvAlgoSearch(onnx.ConvAlgoHeuristic), onnx.WithCPUFallback())
	if d := m.Metadata().Device; d != onnx.DeviceCPU {
		t.Errorf("device %q, want cpu", d)
	}
}

// TestCUDAUnavailableSaysWhatIsMissing loads the demo model with WithCUDA
// in child processes (a process loads ONNX Runtime once) against ONNX
// Runtime folders made of links: the library alone, and the library with
// the CUDA provider beside it when the provider is installed
// (scripts/install-onnxruntime.sh --gpu). Each error must name what is
// missing and how to add it.
func TestCUDAUnavailableSaysWhatIsMissing(t *testing.T) {
	if os.Getenv("ONNX_CUDA_HELPER") == "1" {
		cudaHelper()
		return
	}
	lib := orttest.Library(t)
	if gpuPresent() {
		t.Skip("this machine has a GPU: CUDA loads here (TestGPU… cover it)")
	}
	dir := filepath.Dir(lib)
	provider := filepath.Join(dir, "libonnxruntime_providers_cuda.so")
	noProvider := []string{"libonnxruntime_providers_shared.so is not in", "install-onnxruntime.sh --gpu"}
	if runtime.GOARCH != "amd64" {
		// Only the Linux x64 library that the install script fetches has
		// CUDA compiled in (scripts/test-arm64.sh runs this on arm64).
		noProvider = []string{"is an ONNX Runtime build without CUDA", "a CUDA build of ONNX Runtime"}
	}
	cases := []struct {
		name  string
		files []string // linked into the folder beside the library
		says  []string
	}{
		{"no provider", nil, noProvider},
		{"provider without CUDA", []string{"libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so"},
			[]string{"(CUDA 13) cannot be loaded", "LD_LIBRARY_PATH"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.files != nil {
				if _, err := os.Stat(provider); err != nil {
					msg := "the CUDA provider is not installed beside " + lib + " (scripts/install-onnxruntime.sh --gpu)"
					if os.Getenv("SERVEKIT_REQUIRE_CUDA_PROVIDER") == "1" {
						t.Fatal(msg)
					}
					t.Skip(msg)
				}
			}
			tmp := t.TempDir()
			for _, f := range append([]string{filepath.Base(lib)}, c.files...) {
				if err := os.Symlink(filepath.Join(dir, f), filepath.Join(tmp, f)); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCUDAUnavailableSaysWhatIsMissing$")
			// The loader must not find CUDA elsewhere either.
			cmd.Env = append(os.Environ(), "ONNX_CUDA_HELPER=1", "ONNXRUNTIME_LIB="+filepath.Join(tmp, filepath.Base(lib)), "LD_LIBRARY_PATH=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			s := string(out)
			says := append([]string{"ERR unavailable true", "CUDA device 0 requested (WithCUDA) but unavailable", "WithCPUFallback()",
				"FALLBACK cpu true"}, c.says...)
			for _, want := range says {
				if !strings.Contains(s, want) {
					t.Errorf("the child's output\n%s\ndoes not say %q", s, want)
				}
			}
		})
	}
}

// cudaHelper is the child of TestCUDAUnavailableSaysWhatIsMissing: it
// prints the error of a CUDA load, then the device and reason of a load
// that falls back.
func cudaHelper() {
	_, err := onnx.Load(fraudPath(), onnx.WithCUDA(0))
	os.Stdout.WriteString("ERR " + serving.CodeOf(err).String() + " " + boolStr(errors.Is(err, onnx.ErrCUDAUnavailable)) + " " + errString(err) + "\n")
	m, err := onnx.Load(fraudPath(), onnx.WithCUDA(0), onnx.WithCPUFallback(), onnx.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		os.Stdout.WriteString("FALLBACK failed: " + err.Error() + "\n")
	} else {
		os.Stdout.WriteString("FALLBACK " + m.Metadata().Device + " " + boolStr(errors.Is(m.FallbackReason(), onnx.ErrCUDAUnavailable)) + "\n")
		m.Close()
	}
	os.Exit(0)
}

// TestCPUFallback: with WithCPUFallback a model whose CUDA device cannot
// be used serves on the CPU, says so in its metadata, its log and its
// load metric, and answers exactly as a CPU model does. Device 99 does
// not exist on any machine, so the test runs on GPU machines too.
func TestCPUFallback(t *testing.T) {
	requireORT(t)
	var log bytes.Buffer
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m := loadFraud(t, onnx.WithName("fraud"), onnx.WithCUDA(99), onnx.WithCPUFallback(),
		onnx.WithLogger(slog.New(slog.NewTextHandler(&log, nil))), onnx.WithMeterProvider(mp))
	if d := m.Metadata().Device; d != "cpu" {
		t.Errorf("device %q after the fall back, want cpu", d)
	}
	reason := m.FallbackReason()
	if !errors.Is(reason, onnx.ErrCUDAUnavailable) || serving.CodeOf(reason) != serving.Unavailable {
		t.Errorf("FallbackReason %v, want an Unavailable ErrCUDAUnavailable", reason)
	}
	for _, want := range []string{"level=WARN", "CUDA unavailable", "model=fraud", "device=cuda:99", "reason="} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log %q lacks %q", log.String(), want)
		}
	}
	if got := loadDevices(t, reader); len(got) != 1 || got[0] != "cpu" {
		t.Errorf("load metric devices %v, want [cpu]", got)
	}

	plain := loadFraud(t)
	if plain.FallbackReason() != nil || plain.Metadata().Device != "cpu" {
		t.Errorf("plain CPU model: device %q, reason %v", plain.Metadata().Device, plain.FallbackReason())
	}
	req := fraudRows(7)
	want, err := plain.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Predict(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Outputs[0].RawBytes(), want.Outputs[0].RawBytes()) || !equal(got.Outputs[0].Shape, want.Outputs[0].Shape) {
		t.Errorf("fall-back answer %v, CPU answer %v", got.Outputs[0], want.Outputs[0])
	}
	servingtest.Conformance(t, servingtest.Config{
		New: func(t *testing.T) serving.Predictor {
			m, err := onnx.Load(fraudPath(), onnx.WithCUDA(99), onnx.WithCPUFallback(), onnx.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
		Request:       func() *serving.Request { return fraudRows(3) },
		Deterministic: true,
	})
}

// TestCUDAFallbackKeepsModelErrors: a broken model is the model's fault
// whether or not CUDA works, and the fall back does not turn it into a
// CPU session or an Unavailable error.
func TestCUDAFallbackKeepsModelErrors(t *testing.T) {
	requireORT(t)
	b, err := os.ReadFile(fraudPath())
	if err != nil {
		t.Fatal(err)
	}
	_, err = onnx.LoadBytes("broken", b[:len(b)/2], onnx.WithCUDA(0), onnx.WithCPUFallback())
	wantErr(t, err, serving.InvalidArgument, `model "broken"`)
	if errors.Is(err, onnx.ErrCUDAUnavailable) {
		t.Errorf("a broken model reported as CUDA unavailable: %v", err)
	}
}

// loadDevices returns the device attribute of every load metric point.
func loadDevices(t *testing.T, r *sdkmetric.ManualReader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "servekit.model.load.duration" {
				continue
			}
			for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				v, _ := p.Attributes.Value(attribute.Key("device"))
				out = append(out, v.AsString())
			}
		}
	}
	return out
}

// gpuPresent reports whether nvidia-smi lists a GPU here.
func gpuPresent() bool {
	out, err := exec.Command("nvidia-smi", "-L").Output()
	return err == nil && strings.Contains(string(out), "GPU ")
}

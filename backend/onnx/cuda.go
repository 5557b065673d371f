package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/servekit/servekit/serving"
)

// ErrCUDAUnavailable is wrapped by the Unavailable error Load and LoadBytes
// return when WithCUDA was given and the CUDA execution provider cannot
// run (its library, CUDA, cuDNN, the driver or the device is missing), and
// by Model.FallbackReason after a fall back to the CPU.
var ErrCUDAUnavailable = errors.New("onnx: CUDA execution provider unavailable")

// ConvAlgoSearch is how cuDNN picks a convolution algorithm for each new
// input shape (ONNX Runtime's cudnn_conv_algo_search).
type ConvAlgoSearch string

// cuDNN convolution algorithm searches.
const (
	// ConvAlgoExhaustive benchmarks every algorithm on the first run of
	// each shape: the fastest kernels, at the price of a slow first call
	// per batch size (ONNX Runtime's default).
	ConvAlgoExhaustive ConvAlgoSearch = "EXHAUSTIVE"
	// ConvAlgoHeuristic asks cuDNN's heuristics: no benchmarking, so new
	// batch sizes cost nothing extra, sometimes a slower kernel.
	ConvAlgoHeuristic ConvAlgoSearch = "HEURISTIC"
	// ConvAlgoDefault always uses the default algorithm.
	ConvAlgoDefault ConvAlgoSearch = "DEFAULT"
)

// ArenaExtendStrategy is how ONNX Runtime's CUDA memory arena grows.
type ArenaExtendStrategy string

// Arena growth strategies (ONNX Runtime's arena_extend_strategy).
const (
	// ArenaNextPowerOfTwo grows in doubling chunks (ONNX Runtime's
	// default): few cudaMalloc calls, more memory held.
	ArenaNextPowerOfTwo ArenaExtendStrategy = "kNextPowerOfTwo"
	// ArenaSameAsRequested grows by exactly what is asked: tighter memory,
	// more allocations while the working set settles.
	ArenaSameAsRequested ArenaExtendStrategy = "kSameAsRequested"
)

// cudaConfig is what WithCUDA and its companion options set. Fields other
// than on, device and fallback map to CUDA provider options; their zero
// values leave ONNX Runtime's defaults.
type cudaConfig struct {
	on          bool
	device      int
	fallback    bool
	memLimit    int64 // bytes; 0: no limit
	convAlgo    ConvAlgoSearch
	copyDefault *bool
	arena       ArenaExtendStrategy
	extra       [][2]string // WithCUDAProviderOption, in order
}

// WithCUDA runs the model on CUDA device deviceID through ONNX Runtime's
// CUDA execution provider; operators the provider lacks run on the CPU.
// It needs libonnxruntime_providers_cuda.so and
// libonnxruntime_providers_shared.so beside the ONNX Runtime library
// (scripts/install-onnxruntime.sh --gpu), and CUDA 13, cuDNN 9 and the
// NVIDIA driver on the loader's path (LD_LIBRARY_PATH). When any of it is
// missing Load fails with an Unavailable error wrapping ErrCUDAUnavailable
// that names what is missing, unless WithCPUFallback was given.
//
// The WithCUDA… options below tune the provider; they take effect only
// together with WithCUDA, so one option list can serve CPU and GPU
// deployments alike.
func WithCUDA(deviceID int) Option {
	return optionFunc(func(c *config) { c.cuda.on, c.cuda.device = true, deviceID })
}

// WithCPUFallback makes Load run the model on the CPU, instead of failing,
// when WithCUDA was given and CUDA is unavailable. The fall back is logged
// (WithLogger) at warning level, recorded by Model.FallbackReason, and
// visible in the metadata (Device "cpu") and in the load metric's device
// attribute. A bad option value never falls back: it fails the load.
func WithCPUFallback() Option { return optionFunc(func(c *config) { c.cuda.fallback = true }) }

// WithCUDAMemLimit caps the memory of the session's CUDA arena at bytes
// (gpu_mem_limit). Default 0: no cap. Weights count against it; CUDA's own
// context, cuBLAS and cuDNN workspaces do not.
func WithCUDAMemLimit(bytes int64) Option {
	return optionFunc(func(c *config) { c.cuda.memLimit = bytes })
}

// WithCUDAConvAlgoSearch sets how cuDNN picks convolution algorithms.
// ONNX Runtime's default, ConvAlgoExhaustive, benchmarks algorithms on the
// first run of every input shape: under a micro-batcher, whose batch sizes
// vary, that first-run cost shows in p99 until every size has been seen,
// so warm up the sizes you use or choose ConvAlgoHeuristic.
func WithCUDAConvAlgoSearch(s ConvAlgoSearch) Option {
	return optionFunc(func(c *config) { c.cuda.convAlgo = s })
}

// WithCUDACopyInDefaultStream sets whether copies between host and device
// run on the default (compute) stream (do_copy_in_default_stream, ONNX
// Runtime's default true). false puts them on separate streams, which can
// overlap copies with compute of concurrent runs, at the risk ONNX
// Runtime documents of races for some models.
func WithCUDACopyInDefaultStream(on bool) Option {
	return optionFunc(func(c *config) { c.cuda.copyDefault = &on })
}

// WithCUDAArenaExtendStrategy sets how the CUDA memory arena grows.
func WithCUDAArenaExtendStrategy(s ArenaExtendStrategy) Option {
	return optionFunc(func(c *config) { c.cuda.arena = s })
}

// WithCUDAProviderOption passes any other CUDA provider option by ONNX
// Runtime's name (for example "use_tf32" "0", "enable_cuda_graph",
// "prefer_nhwc", "cudnn_conv_use_max_workspace"). It is applied after the
// typed options, so it wins over them for the same key. ONNX Runtime
// refuses unknown keys and values at load, as an InvalidArgument error.
func WithCUDAProviderOption(key, value string) Option {
	return optionFunc(func(c *config) { c.cuda.extra = append(c.cuda.extra, [2]string{key, value}) })
}

// check refuses option values ONNX Runtime would misread, before any
// library is loaded, so the mistake shows on every machine.
func (c cudaConfig) check() error {
	if !c.on {
		return nil
	}
	switch {
	case c.device < 0:
		return fmt.Errorf("CUDA device id %d is negative", c.device)
	case c.memLimit < 0:
		return fmt.Errorf("CUDA memory limit %d is negative", c.memLimit)
	case c.convAlgo != "" && !slices.Contains([]ConvAlgoSearch{ConvAlgoExhaustive, ConvAlgoHeuristic, ConvAlgoDefault}, c.convAlgo):
		return fmt.Errorf("cuDNN convolution algorithm search %q: want EXHAUSTIVE, HEURISTIC or DEFAULT", string(c.convAlgo))
	case c.arena != "" && c.arena != ArenaNextPowerOfTwo && c.arena != ArenaSameAsRequested:
		return fmt.Errorf("CUDA arena extend strategy %q: want kNextPowerOfTwo or kSameAsRequested", string(c.arena))
	}
	for _, kv := range c.extra {
		if kv[0] == "" {
			return errors.New("CUDA provider option with an empty key")
		}
	}
	return nil
}

// providerOptions is the CUDA provider's option map.
func (c cudaConfig) providerOptions() map[string]string {
	o := map[string]string{"device_id": strconv.Itoa(c.device)}
	if c.memLimit > 0 {
		o["gpu_mem_limit"] = strconv.FormatInt(c.memLimit, 10)
	}
	if c.convAlgo != "" {
		o["cudnn_conv_algo_search"] = string(c.convAlgo)
	}
	if c.copyDefault != nil {
		o["do_copy_in_default_stream"] = map[bool]string{true: "1", false: "0"}[*c.copyDefault]
	}
	if c.arena != "" {
		o["arena_extend_strategy"] = string(c.arena)
	}
	for _, kv := range c.extra {
		o[kv[0]] = kv[1]
	}
	return o
}

// DeviceCPU is Metadata.Device for a model that runs on the CPU.
const DeviceCPU = "cpu"

// cudaDevice is Metadata.Device for a model on CUDA device id, named as
// PyTorch and most tools name it.
func cudaDevice(id int) string { return "cuda:" + strconv.Itoa(id) }

// errBadCUDAOption marks a provider option ONNX Runtime refused: the
// user's mistake, never a reason to fall back.
var errBadCUDAOption = errors.New("bad CUDA provider option")

// appendCUDA adds the CUDA provider to so. Its errors wrap either
// errBadCUDAOption or ErrCUDAUnavailable.
func appendCUDA(so *ort.SessionOptions, c cudaConfig) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCUDAUnavailable, err)
	}
	defer co.Destroy()
	// The first update loads libonnxruntime_providers_cuda.so, and with it
	// CUDA's libraries, and checks the device id against the devices
	// present: its failures are CUDA's. Those of the other options, set
	// once the provider is known to load, are the caller's.
	opts := c.providerOptions()
	if err := co.Update(map[string]string{"device_id": opts["device_id"]}); err != nil {
		return fmt.Errorf("%w: %w", ErrCUDAUnavailable, err)
	}
	if err := co.Update(opts); err != nil {
		return fmt.Errorf("%w: %v", errBadCUDAOption, trimBinding(err))
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("%w: %w", ErrCUDAUnavailable, err)
	}
	return nil
}

// newSession creates the model's session on the device the config asks
// for. It returns the device the session runs on and, after a fall back
// to the CPU, why CUDA was not used.
//
// A session that fails to be created with CUDA may fail because of CUDA
// (no device, an old driver, a bad device id) or because of the model; a
// CPU session tells which, at a cost paid only on that failure path and
// cheaper than guessing from ONNX Runtime's wording.
func newSession(c config, create func(*ort.SessionOptions) (*ort.DynamicAdvancedSession, error)) (*ort.DynamicAdvancedSession, string, error, error) {
	so, err := sessionOptions(c)
	if err != nil {
		return nil, "", nil, err
	}
	defer so.Destroy()
	if !c.cuda.on {
		s, err := create(so)
		return s, DeviceCPU, nil, err
	}
	cudaErr := appendCUDA(so, c.cuda)
	switch {
	case errors.Is(cudaErr, errBadCUDAOption):
		return nil, "", nil, serving.Errorf(serving.InvalidArgument, "onnx: model %q: %w", c.name, cudaErr)
	case cudaErr == nil:
		s, err := create(so)
		if err == nil {
			return s, cudaDevice(c.cuda.device), nil, nil
		}
		cudaErr = fmt.Errorf("%w: creating the session on device %d: %w", ErrCUDAUnavailable, c.cuda.device, err)
	}
	cpu, err := sessionOptions(c)
	if err != nil {
		return nil, "", nil, err
	}
	defer cpu.Destroy()
	s, err := create(cpu)
	if err != nil {
		return nil, "", nil, err // the model's fault, whatever CUDA said
	}
	unavailable := cudaError(c, cudaErr)
	if !c.cuda.fallback {
		s.Destroy()
		return nil, "", nil, unavailable
	}
	logger := c.logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn("onnx: CUDA unavailable, the model runs on the CPU (WithCPUFallback)",
		"model", c.name, "version", c.version, "device", cudaDevice(c.cuda.device), "reason", unavailable.Error())
	return s, DeviceCPU, unavailable, nil
}

// missingLib finds the library the dynamic loader could not open in ONNX
// Runtime's message, e.g. "libcublasLt.so.13: cannot open shared object
// file", or the one whose symbols did not match ("undefined symbol: …,
// version libcublasLt.so.13").
var missingLib = regexp.MustCompile(`([^\s:/]+\.so[.0-9]*): cannot open shared object file|undefined symbol: \S+ version (\S+\.so[.0-9]*)|undefined symbol: \S+, version (\S+\.so[.0-9]*)`)

// cudaError is the Unavailable error for CUDA that cannot run: it names
// the missing library first and says how to provide it, then keeps ONNX
// Runtime's own message.
func cudaError(c config, err error) error {
	env.mu.Lock()
	path := env.path
	env.mu.Unlock()
	dir := filepath.Dir(path)
	what, fix := "", ""
	msg := trimBinding(err)
	if m := missingLib.FindStringSubmatch(msg); m != nil {
		lib := m[1] + m[2] + m[3]
		switch {
		case strings.HasPrefix(lib, "libonnxruntime_providers"):
			what = lib + " is not in " + dir + " (beside " + libName + ")"
			fix = "run scripts/install-onnxruntime.sh --gpu to put ONNX Runtime " + RequiredVersion + "'s CUDA provider there"
		case strings.HasPrefix(lib, "libcuda.so"):
			what = lib + " (the NVIDIA driver) cannot be loaded"
			fix = "this machine has no NVIDIA driver: run on a GPU machine"
		case strings.HasPrefix(lib, "libcudnn"):
			what = lib + " (cuDNN 9) cannot be loaded"
			fix = "install cuDNN 9 for CUDA 13 and put its folder on LD_LIBRARY_PATH"
		case strings.Contains(m[0], "undefined symbol"):
			what = lib + " is not the version the CUDA provider was built for"
			fix = "put CUDA 13's libraries first on LD_LIBRARY_PATH"
		default:
			what = lib + " (CUDA 13) cannot be loaded"
			fix = "install the CUDA 13 runtime libraries (cudart, cuBLAS, cuRAND) and put their folder on LD_LIBRARY_PATH, e.g. /usr/local/cuda-13.0/targets/x86_64-linux/lib"
		}
	} else if strings.Contains(msg, "not enabled in this build") {
		// The library itself has no CUDA: the arm64 and macOS builds that
		// scripts/install-onnxruntime.sh installs are CPU only.
		what = path + " is an ONNX Runtime build without CUDA"
		fix = "use one with CUDA: on Linux x64 the one scripts/install-onnxruntime.sh installs, with --gpu for the provider; elsewhere (e.g. Jetson) a CUDA build of ONNX Runtime " + RequiredVersion
	} else {
		what = "the CUDA provider could not start"
		fix = "check the device with nvidia-smi and the device id"
	}
	if !c.cuda.fallback {
		fix += ", or add WithCPUFallback() to run on the CPU"
	}
	return serving.Errorf(serving.Unavailable,
		"onnx: model %q: CUDA device %d requested (WithCUDA) but unavailable: %s; %s: %w",
		c.name, c.cuda.device, what, fix, err)
}

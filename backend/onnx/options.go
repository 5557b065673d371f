package onnx

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures Load and LoadBytes.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// GraphOptimization is ONNX Runtime's graph optimisation level.
type GraphOptimization int

// Optimisation levels, as in ONNX Runtime's GraphOptimizationLevel.
const (
	OptimizeNone     GraphOptimization = 0  // no graph rewrites
	OptimizeBasic    GraphOptimization = 1  // constant folding, redundant node removal
	OptimizeExtended GraphOptimization = 2  // plus operator fusions
	OptimizeAll      GraphOptimization = 99 // plus layout optimisations (ONNX Runtime's default)
)

type config struct {
	libraryPath   string
	name, version string
	intraOp       int
	interOp       int
	optLevel      GraphOptimization
	optimizedPath string
	memArena      bool
	warmup        int
	cuda          cudaConfig
	logger        *slog.Logger
	meters        metric.MeterProvider
	tracers       trace.TracerProvider
}

// DefaultIntraOpThreads is the intra-op thread count of a session unless
// WithIntraOpThreads says otherwise. One thread per session: servekit runs
// a model from many goroutines at once, and each Run then uses the calling
// goroutine's thread instead of waking a pool that the other requests are
// competing for. On these 2-core machines the fraud MLP ran fastest this way
// under concurrent load (see BenchmarkThreads). Raise it for large models
// that serve few requests at a time.
const DefaultIntraOpThreads = 1

func newConfig(opts []Option) config {
	c := config{intraOp: DefaultIntraOpThreads, interOp: 1, optLevel: OptimizeAll, memArena: true}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// WithLibraryPath names the ONNX Runtime shared library (see InitRuntime for
// the search order without it). The library is loaded once per process.
func WithLibraryPath(path string) Option { return optionFunc(func(c *config) { c.libraryPath = path }) }

// WithName sets the model name of the metadata, of responses and of
// telemetry. Default: the file name without ".onnx" for Load, the name
// argument for LoadBytes.
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithVersion sets the version reported in metadata, responses and
// telemetry. Default: empty.
func WithVersion(version string) Option { return optionFunc(func(c *config) { c.version = version }) }

// WithIntraOpThreads sets the threads ONNX Runtime may use inside one
// operator (0 lets ONNX Runtime use one per core). Default
// DefaultIntraOpThreads.
func WithIntraOpThreads(n int) Option { return optionFunc(func(c *config) { c.intraOp = n }) }

// WithInterOpThreads sets the threads used to run independent operators in
// parallel (only used by parallel execution mode; default 1).
func WithInterOpThreads(n int) Option { return optionFunc(func(c *config) { c.interOp = n }) }

// WithGraphOptimization sets the graph optimisation level (default
// OptimizeAll).
func WithGraphOptimization(level GraphOptimization) Option {
	return optionFunc(func(c *config) { c.optLevel = level })
}

// WithOptimizedModelPath makes ONNX Runtime write the optimised graph to
// path when the session is created, to inspect it or to load it later with
// OptimizeNone and skip the optimisation at start-up.
func WithOptimizedModelPath(path string) Option {
	return optionFunc(func(c *config) { c.optimizedPath = path })
}

// WithMemoryArena turns ONNX Runtime's CPU memory arena on (default) or off.
// Off trades some speed for memory returned to the system after each run,
// which suits models with very variable input sizes.
func WithMemoryArena(on bool) Option { return optionFunc(func(c *config) { c.memArena = on }) }

// WithWarmup runs the model n times at load time on zeros (batch 1 for
// dynamic dims), so the first real request does not pay for lazy
// allocations and kernel selection. Models with string inputs are warmed
// with empty strings. A failing warm-up fails the load.
func WithWarmup(n int) Option { return optionFunc(func(c *config) { c.warmup = n }) }

// WithLogger sets where the package logs the few events worth a line: a
// fall back from CUDA to the CPU (WithCPUFallback), an output the model
// will not serve (Metadata.Unserved). Default slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// WithMeterProvider sets where metrics go (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

// WithTracerProvider sets where spans go (default otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracers = tp })
}

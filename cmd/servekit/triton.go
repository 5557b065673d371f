package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
)

// A repository model's config.pbtxt (or config.json) says how to build its
// chain; package repository parses and checks it, and hands it to the
// loader, because only the loader builds chains (repository imports
// neither batch nor cache). These functions are that mapping, the part of
// Triton's configuration a server applies itself:
//
//	dynamic_batching + max_batch_size  → batch.New (configChain)
//	response_cache.enable              → the shared cache for the version (cacheFor)
//	instance_group kind, gpus, count   → CPU or CUDA device; batches in flight
//	optimization.graph.level           → onnx.WithGraphOptimization
//	platform, backend                  → must be ONNX Runtime's
//
// The repository is told so (repoLoaderFields): a field applied here is
// not reported as ignored.
var repoLoaderFields = []repository.LoaderField{
	repository.FieldDynamicBatching, repository.FieldResponseCache,
	repository.FieldInstanceGroup, repository.FieldGraphOptimization,
}

// configChain is versionChain for a version whose configuration asks for
// dynamic batching: the batcher takes Triton's settings instead of the
// -batch flags (only -batch-adaptive still applies). Without
// dynamic_batching it is versionChain.
func configChain(model serving.Predictor, o *options, c *cache.Cache, cfg *repository.Config, log *slog.Logger) (serving.Predictor, error) {
	b, ok := cfg.Batching()
	if !ok {
		return versionChain(model, o, c, log)
	}
	bt, err := batch.New(model, batchOptions(b, cfg, o)...)
	if err != nil {
		return nil, err
	}
	var p serving.Predictor = bt
	if b.DefaultTimeout > 0 {
		p = defaultTimeout{p, b.DefaultTimeout}
	}
	// admission control sized for this model's batches
	if p, err = withLimit(p, o, b.MaxBatchSize); err != nil {
		return nil, errors.Join(err, serving.Close(bt))
	}
	if c != nil {
		p = c.Middleware()(p)
	}
	return p, nil
}

// batchOptions maps dynamic_batching to the batcher's options.
// max_queue_size counts requests in Triton and rows here: one for one,
// exact for one-row requests; when it is 0 (Triton: unbounded) the
// -batch-queue-rows bound applies, since nothing here queues without one.
func batchOptions(b repository.Batching, cfg *repository.Config, o *options) []batch.Option {
	opts := []batch.Option{
		batch.WithMaxBatchRows(b.MaxBatchSize),
		batch.WithMaxDelay(b.MaxQueueDelay),
		batch.WithPriorityLevels(b.PriorityLevels, b.DefaultPriority),
		batch.WithAdaptive(o.batchAdaptive),
		batch.WithMaxQueueRows(o.batchQueueRows),
	}
	if len(b.PreferredBatchSizes) > 0 {
		opts = append(opts, batch.WithPreferredBatchRows(b.PreferredBatchSizes...))
	}
	if b.MaxQueueSize > 0 {
		opts = append(opts, batch.WithMaxQueueRows(b.MaxQueueSize))
	}
	if in, ok := cfg.Instances(); ok && in.Count > 0 {
		opts = append(opts, batch.WithMaxInFlight(in.Count)) // Triton runs a batch per free instance
	}
	return opts
}

// defaultTimeout is the queue policy's default_timeout_microseconds with
// timeout_action REJECT: every request gets this deadline, unless its own
// (the transport's, from the request's timeout) is sooner. The batcher
// drops a request whose deadline passes while queued, so it never runs.
type defaultTimeout struct {
	next serving.Predictor
	d    time.Duration
}

func (t defaultTimeout) Predict(ctx context.Context, req *serving.Request) (*serving.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.next.Predict(ctx, req)
}

func (t defaultTimeout) Unwrap() serving.Predictor { return t.next }

// cacheFor says whether a version answers through the response cache: its
// config's response_cache.enable when set, otherwise -cache.
func cacheFor(o *options, cfg *repository.Config) bool {
	if on, set := cfg.ResponseCache(); set {
		return on
	}
	return o.cache
}

// deviceOptions places a version as instance_group asks (deviceFor).
func deviceOptions(o *options, cfg *repository.Config) []onnx.Option {
	g := o.gpu
	g.device = deviceFor(o, cfg)
	return g.options()
}

// deviceFor is the CUDA device of a version, or -1 for the CPU: KIND_CPU
// runs on the CPU even when -cuda is set, KIND_GPU on the first of its
// gpus (or the -cuda device, else 0), anything else where -cuda says.
func deviceFor(o *options, cfg *repository.Config) int {
	in, _ := cfg.Instances()
	switch {
	case in.Kind == repository.DeviceCPU:
		return -1
	case in.Kind != repository.DeviceGPU:
		return o.gpu.device
	case len(in.GPUs) > 0:
		return in.GPUs[0]
	}
	return max(o.gpu.device, 0)
}

// graphLevel maps optimization.graph.level, Triton's numbering for ONNX
// Runtime (-1 basic, 1 extended, 2 none, else all).
func graphLevel(cfg *repository.Config) (onnx.GraphOptimization, bool) {
	level, set := cfg.GraphOptimization()
	return map[int]onnx.GraphOptimization{-1: onnx.OptimizeBasic, 1: onnx.OptimizeExtended, 2: onnx.OptimizeNone}[level], set && level != 0
}

// checkPlatform refuses a model configured for another of Triton's
// backends: its file would not load, or worse, load as something else.
func checkPlatform(v repository.Version) error {
	m := v.Config.Model
	if p, b := m.GetPlatform(), m.GetBackend(); (p != "" && p != "onnxruntime_onnx") || (b != "" && b != "onnxruntime") {
		return serving.Errorf(serving.InvalidArgument, "model %q: platform %q, backend %q: this server runs ONNX models (platform onnxruntime_onnx, backend onnxruntime)", v.Model, p, b)
	}
	return nil
}

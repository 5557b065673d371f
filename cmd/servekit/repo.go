package main

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/cache"
	"github.com/servekit/servekit/repository"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
	"github.com/servekit/servekit/telemetry"
)

// repoParams are the backend options a model's configuration may set in
// "parameters"; the -threads flag is the default. Triton's ONNX Runtime
// backend spells three of them its own way, and both spellings work.
type repoParams struct {
	IntraOpThreads    *int    `json:"intra_op_threads"`
	InterOpThreads    *int    `json:"inter_op_threads"`
	GraphOptimization *string `json:"graph_optimization"` // none, basic, extended, all
	MemoryArena       *bool   `json:"memory_arena"`

	TritonIntraOp  *int  `json:"intra_op_thread_count"`
	TritonInterOp  *int  `json:"inter_op_thread_count"`
	TritonMemArena *bool `json:"enable_mem_arena"`
}

var graphLevels = map[string]onnx.GraphOptimization{
	"none": onnx.OptimizeNone, "basic": onnx.OptimizeBasic, "extended": onnx.OptimizeExtended, "all": onnx.OptimizeAll,
}

// openRepository serves the repository's models on srv, so over REST and
// gRPC alike: each model's router is registered as it appears, behind
// telemetry (which labels its metrics with the version that answered,
// Response.Version), and removed as it goes; the repository is srv's model
// repository (configurations, and index, load and unload under
// -model-control-mode explicit). Each version gets its own cache layer
// and batcher below the router (versionChain), as package rollout
// recommends. Versions that fail to load are logged and reported, and the
// server starts anyway.
//
// The cache layers share c, the process's cache (with -cache-redis, its
// Redis tier too): each layer keys on its model's content fingerprint, so
// the answers of files replaced by a hot reload are never served for the
// new ones. c outlives the repository (run closes it last).
func openRepository(ctx context.Context, o *options, c *cache.Cache, srv *oip.Server, log *slog.Logger) (*repository.Repository, error) {
	load := func(_ context.Context, v repository.Version) (serving.Predictor, error) {
		var p repoParams
		if err := v.DecodeParameters(&p); err != nil {
			return nil, err
		}
		if err := checkPlatform(v); err != nil {
			return nil, err
		}
		p.IntraOpThreads, p.InterOpThreads, p.MemoryArena = cmp.Or(p.IntraOpThreads, p.TritonIntraOp), cmp.Or(p.InterOpThreads, p.TritonInterOp), cmp.Or(p.MemoryArena, p.TritonMemArena)
		opts := append([]onnx.Option{onnx.WithName(v.Model), onnx.WithVersion(v.Version), onnx.WithIntraOpThreads(o.threads),
			onnx.WithLogger(log)}, deviceOptions(o, v.Config)...)
		if level, ok := graphLevel(v.Config); ok {
			opts = append(opts, onnx.WithGraphOptimization(level))
		}
		if o.ortLib != "" {
			opts = append(opts, onnx.WithLibraryPath(o.ortLib))
		}
		if p.IntraOpThreads != nil {
			opts = append(opts, onnx.WithIntraOpThreads(*p.IntraOpThreads))
		}
		if p.InterOpThreads != nil {
			opts = append(opts, onnx.WithInterOpThreads(*p.InterOpThreads))
		}
		if p.GraphOptimization != nil {
			level, ok := graphLevels[*p.GraphOptimization]
			if !ok {
				return nil, serving.Errorf(serving.InvalidArgument, "model %q: parameters.graph_optimization %q: want none, basic, extended or all", v.Model, *p.GraphOptimization)
			}
			opts = append(opts, onnx.WithGraphOptimization(level))
		}
		if p.MemoryArena != nil {
			opts = append(opts, onnx.WithMemoryArena(*p.MemoryArena))
		}
		m, err := onnx.Load(v.Path, opts...)
		if err != nil {
			return nil, err
		}
		var vc *cache.Cache // the shared cache, for the versions whose config or -cache asks
		if cacheFor(o, v.Config) {
			vc = c
		}
		chain, err := configChain(m, o, vc, v.Config, log)
		if err != nil {
			return nil, errors.Join(err, m.Close())
		}
		return chain, nil
	}
	opts := []repository.Option{repository.WithPollInterval(o.pollInterval()), repository.WithLogger(log),
		repository.WithServer(srv, telemetry.Middleware()), repository.WithLoaderFields(repoLoaderFields...)}
	if o.strictConfig {
		opts = append(opts, repository.WithStrictConfig())
	}
	opts = append(opts, controlOptions(o)...)
	return repository.Open(ctx, o.repo, load, opts...)
}

// servedModels names every model served: the -model ones, then the
// repository's, those that can answer first (the curl line shows the first).
func servedModels(models []loaded, repo *repository.Repository) []string {
	var names []string
	for _, m := range models {
		if !slices.Contains(names, m.name) {
			names = append(names, m.name)
		}
	}
	if repo != nil {
		repoModels := repo.Models()
		ready := func(name string) bool { r, ok := repo.Router(name); return ok && r.Ready() }
		slices.SortStableFunc(repoModels, func(a, b string) int {
			switch ra, rb := ready(a), ready(b); {
			case ra && !rb:
				return -1
			case rb && !ra:
				return 1
			}
			return 0
		})
		names = append(names, repoModels...)
	}
	return names
}

func repoSummary(repo *repository.Repository) string {
	failed := repoFailed(repo)
	if len(failed) == 0 {
		return ""
	}
	return " (failed to load: " + strings.Join(failed, ", ") + "; see the log)"
}

// repoFailed names the versions that failed to load, as model/version.
func repoFailed(repo *repository.Repository) []string {
	if repo == nil {
		return nil
	}
	var failed []string
	for _, m := range repo.Status().Models {
		for _, v := range m.Versions {
			if v.State == repository.StateFailed {
				failed = append(failed, m.Name+"/"+v.Version)
			}
		}
	}
	return failed
}

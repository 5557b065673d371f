package oip

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/servekit/servekit/serving"
)

// Stat is a count of events and their summed time, Triton's
// StatisticDuration.
type Stat struct {
	Count uint64
	NS    uint64 // nanoseconds, summed
}

func (s *Stat) add(d time.Duration) {
	s.Count++
	s.NS += uint64(max(d, 0))
}

// InferStats are a model version's request statistics in the shape of
// Triton's statistics extension. Success and Fail time whole calls, from
// the request's arrival to its answer (encoding excluded). Queue and the
// three compute phases count the successful requests the model ran for
// (not cache hits): the time they waited (admission, batch queue) and the
// time the model spent preparing inputs, running and reading outputs, a
// batch's time charged to each of its members, as Triton charges it.
// CacheHit times the lookups that answered (a request that waited for an
// identical request's run counts as a hit), CacheMiss the lookups and
// stores of those that did not.
type InferStats struct {
	Success, Fail, Queue                      Stat
	ComputeInput, ComputeInfer, ComputeOutput Stat
	CacheHit, CacheMiss                       Stat
}

// BatchStats are the runs of one batch size: count and compute time per
// phase, each run counted once however many requests it answered.
type BatchStats struct {
	Size                                      int64
	ComputeInput, ComputeInfer, ComputeOutput Stat
}

// ModelStats are one model version's cumulative statistics, Triton's
// ModelStatistics: InferenceCount counts the rows the model ran for
// successful requests (dimension 0 of the first input; cache hits
// excluded), ExecutionCount the runs of the model (a batch is one).
type ModelStats struct {
	Name, Version  string
	LastInference  time.Time // the last successful request; zero for none
	InferenceCount uint64
	ExecutionCount uint64
	Inference      InferStats
	Batches        []BatchStats // by size, ascending
}

// maxBatchSizes bounds the batch sizes a version keeps apart: an
// unbatched model runs at whatever rows clients send, and a client must
// not grow the table without bound. Runs of sizes past it count under
// size 0 ("other sizes").
const maxBatchSizes = 1024

// statsTable holds every model version's statistics. Lookups read
// copy-on-write maps without a lock, so requests to different models do
// not contend; each version's counters have a lock of their own.
type statsTable struct {
	mu     sync.Mutex // serialises writers of byModel and of each model's map
	models atomic.Pointer[map[string]*modelStats]
}

type modelStats struct {
	versions atomic.Pointer[map[string]*versionStats]
}

type versionStats struct {
	mu             sync.Mutex
	last           time.Time
	inferenceCount uint64
	executionCount uint64
	infer          InferStats
	batches        map[int64]*BatchStats
}

func (t *statsTable) entry(model, version string) *versionStats {
	if ms := t.models.Load(); ms != nil {
		if m := (*ms)[model]; m != nil {
			if vs := m.versions.Load(); vs != nil {
				if v := (*vs)[version]; v != nil {
					return v
				}
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := map[string]*modelStats{}
	if ms := t.models.Load(); ms != nil {
		cur = *ms
	}
	m := cur[model]
	if m == nil {
		m = new(modelStats)
		next := maps.Clone(cur)
		next[model] = m
		t.models.Store(&next)
	}
	vs := map[string]*versionStats{}
	if p := m.versions.Load(); p != nil {
		vs = *p
	}
	if v := vs[version]; v != nil {
		return v
	}
	v := &versionStats{}
	next := maps.Clone(vs)
	next[version] = v
	m.versions.Store(&next)
	return v
}

// forget drops a version's statistics, or a model's for version "".
func (t *statsTable) forget(model, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := t.models.Load()
	if ms == nil || (*ms)[model] == nil {
		return
	}
	if version == "" {
		next := maps.Clone(*ms)
		delete(next, model)
		t.models.Store(&next)
		return
	}
	m := (*ms)[model]
	if vs := m.versions.Load(); vs != nil {
		next := maps.Clone(*vs)
		delete(next, version)
		m.versions.Store(&next)
	}
}

// record counts one call. What the layers measured comes from tm; a call
// that succeeded without a cache hit and without any layer measuring it
// (a Predictor that reports nothing) counts as one run of its rows, so
// that every successful request shows in the queue and compute counts, as
// Triton's always do (perf_analyzer finds the version it measures by
// them).
func (t *statsTable) record(model, version string, req *serving.Request, tm *serving.Timing, start time.Time, err error) {
	v := tm.Values()
	now := time.Now()
	took := now.Sub(start)
	rows := max(req.Rows(), 1)
	e := t.entry(model, version)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range v.Executions {
		e.ran(x)
	}
	if err != nil {
		e.infer.Fail.add(took)
		return
	}
	e.infer.Success.add(took)
	e.last = now
	switch v.Cache {
	case serving.CacheHit:
		e.infer.CacheHit.add(v.CacheTime)
		return
	case serving.CacheMiss:
		e.infer.CacheMiss.add(v.CacheTime)
	}
	if !v.Executed() {
		e.ran(serving.Execution{Rows: rows})
	}
	e.inferenceCount += uint64(rows)
	e.infer.Queue.add(v.Queue)
	e.infer.ComputeInput.add(v.ComputeInput)
	e.infer.ComputeInfer.add(v.ComputeInfer)
	e.infer.ComputeOutput.add(v.ComputeOutput)
}

// ran counts one run of the model. e.mu is held.
func (e *versionStats) ran(x serving.Execution) {
	e.executionCount++
	size := x.Rows
	b := e.batches[size]
	if b == nil {
		if e.batches == nil {
			e.batches = map[int64]*BatchStats{}
		}
		if len(e.batches) >= maxBatchSizes {
			size = 0
			b = e.batches[0]
		}
		if b == nil {
			b = &BatchStats{Size: size}
			e.batches[size] = b
		}
	}
	b.ComputeInput.add(x.ComputeInput)
	b.ComputeInfer.add(x.ComputeInfer)
	b.ComputeOutput.add(x.ComputeOutput)
}

func (e *versionStats) snapshot(model, version string) ModelStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := ModelStats{Name: model, Version: version, LastInference: e.last, InferenceCount: e.inferenceCount,
		ExecutionCount: e.executionCount, Inference: e.infer}
	for _, b := range e.batches {
		s.Batches = append(s.Batches, *b)
	}
	slices.SortFunc(s.Batches, func(a, b BatchStats) int { return cmp.Compare(a.Size, b.Size) })
	return s
}

// recorded lists the versions of model with statistics.
func (t *statsTable) recorded(model string) map[string]*versionStats {
	ms := t.models.Load()
	if ms == nil || (*ms)[model] == nil {
		return nil
	}
	if vs := (*ms)[model].versions.Load(); vs != nil {
		return *vs
	}
	return nil
}

// Statistics returns the statistics of model name at version: every
// version of the model when version is "", every model's when name is ""
// too (Triton's /v2/models/stats). A model lists the versions it holds,
// with zeros before their first request, and any other version it has
// statistics for (one since unloaded, or "" for failures no version was
// resolved for). Unknown names and versions are NotFound errors.
func (s *Server) Statistics(name, version string) ([]ModelStats, error) {
	if name == "" {
		if version != "" {
			return nil, serving.Errorf(serving.InvalidArgument, "oip: statistics of version %q need a model name", version)
		}
		var out []ModelStats
		for _, m := range s.Models() {
			out = append(out, s.modelStats(m)...)
		}
		return out, nil
	}
	if _, err := s.Resolve(name, version); err != nil {
		return nil, err
	}
	if version != "" {
		return []ModelStats{s.stats.entry(name, version).snapshot(name, version)}, nil
	}
	return s.modelStats(name), nil
}

func (s *Server) modelStats(name string) []ModelStats {
	rec := s.stats.recorded(name)
	versions := s.Versions(name)
	if len(versions) == 0 {
		if _, v, err := s.Lookup(name, ""); err == nil {
			versions = []string{v}
		}
	}
	for v, e := range rec {
		if !slices.Contains(versions, v) && e.used() {
			versions = append(versions, v)
		}
	}
	slices.SortFunc(versions, compareVersions)
	out := make([]ModelStats, 0, len(versions))
	for _, v := range versions {
		if e := rec[v]; e != nil {
			out = append(out, e.snapshot(name, v))
		} else {
			out = append(out, ModelStats{Name: name, Version: v})
		}
	}
	return out
}

func (e *versionStats) used() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.infer.Success.Count+e.infer.Fail.Count+e.executionCount > 0
}

// compareVersions orders numeric versions by number, before any other,
// which order as strings.
func compareVersions(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return cmp.Compare(a, b)
}

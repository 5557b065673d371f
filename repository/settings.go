package repository

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/servekit/servekit/serving/modelconfigpb"
)

// Bounds on scheduling settings: beyond them a value is a typo, and a
// delay in µs beyond them would overflow a time.Duration.
const (
	maxQueueDelay     = time.Minute
	maxDefaultTimeout = 24 * time.Hour
	maxPriorityLevels = 64
	maxInstances      = 256
)

// Batching is dynamic_batching in the terms of servekit's batcher; each
// field says which batch option it is for. The repository checks it when
// the config is read; the LoadFunc builds the batcher from it (see
// cmd/servekit).
type Batching struct {
	// MaxBatchSize is max_batch_size: batch.WithMaxBatchRows. A request
	// with more rows is refused before it reaches the batcher, as Triton
	// refuses it.
	MaxBatchSize int
	// PreferredBatchSizes: batch.WithPreferredBatchRows.
	PreferredBatchSizes []int
	// MaxQueueDelay is max_queue_delay_microseconds: batch.WithMaxDelay.
	// Triton's default, 0, runs whatever is queued as soon as the model is
	// free.
	MaxQueueDelay time.Duration
	// PriorityLevels and DefaultPriority: batch.WithPriorityLevels. Both
	// are 1 when the config sets no levels: every request is equal, as in
	// Triton.
	PriorityLevels, DefaultPriority int
	// MaxQueueSize is default_queue_policy.max_queue_size, in requests; 0
	// when the config sets no bound (Triton's "unbounded"; servekit's
	// batcher keeps its default bound). servekit bounds rows: the size
	// bounds rows one for one, which is the same for one-row requests and
	// tighter for larger ones.
	MaxQueueSize int
	// DefaultTimeout is default_queue_policy.default_timeout_microseconds
	// with timeout_action REJECT: a request waits at most this long for
	// its answer, and fails with DeadlineExceeded after (a queued request
	// is removed and never runs). 0: no timeout, also for DELAY.
	DefaultTimeout time.Duration
	// AllowTimeoutOverride lets a request's own, shorter timeout apply.
	// servekit's transports always apply a request's own deadline, so
	// false only means the default cannot be raised, as in Triton.
	AllowTimeoutOverride bool
}

// Batching returns the dynamic batching settings, or false when the
// config has no dynamic_batching.
func (c *Config) Batching() (Batching, bool) {
	m := c.model()
	db := m.GetDynamicBatching()
	if db == nil {
		return Batching{}, false
	}
	b := Batching{
		MaxBatchSize:    int(m.MaxBatchSize),
		MaxQueueDelay:   time.Duration(db.MaxQueueDelayMicroseconds) * time.Microsecond,
		PriorityLevels:  max(1, int(db.PriorityLevels)),
		DefaultPriority: max(1, int(db.DefaultPriorityLevel)),
	}
	for _, s := range db.PreferredBatchSize {
		b.PreferredBatchSizes = append(b.PreferredBatchSizes, int(s))
	}
	if q := db.DefaultQueuePolicy; q != nil {
		b.MaxQueueSize = int(q.MaxQueueSize)
		if q.TimeoutAction == modelconfigpb.ModelQueuePolicy_REJECT {
			b.DefaultTimeout = time.Duration(q.DefaultTimeoutMicroseconds) * time.Microsecond
		}
		b.AllowTimeoutOverride = q.AllowTimeoutOverride
	}
	return b, true
}

func (c *Config) checkBatching() error {
	m := c.model()
	db := m.GetDynamicBatching()
	if db == nil {
		return nil
	}
	if m.MaxBatchSize < 1 {
		return errors.New("dynamic_batching needs max_batch_size 1 or more (the most rows one run may take)")
	}
	for _, s := range db.PreferredBatchSize {
		if s < 1 || s > m.MaxBatchSize {
			return fmt.Errorf("dynamic_batching.preferred_batch_size %d: want 1 to max_batch_size %d", s, m.MaxBatchSize)
		}
	}
	if d := db.MaxQueueDelayMicroseconds; d > uint64(maxQueueDelay/time.Microsecond) {
		return fmt.Errorf("dynamic_batching.max_queue_delay_microseconds %d: at most %d (%v)", d, maxQueueDelay/time.Microsecond, maxQueueDelay)
	}
	levels, def := db.PriorityLevels, db.DefaultPriorityLevel
	switch {
	case levels > maxPriorityLevels:
		return fmt.Errorf("dynamic_batching.priority_levels %d: at most %d", levels, maxPriorityLevels)
	case levels == 0 && def != 0:
		return fmt.Errorf("dynamic_batching.default_priority_level %d without priority_levels", def)
	case levels > 0 && (def < 1 || def > levels):
		return fmt.Errorf("dynamic_batching.default_priority_level %d: want 1 to priority_levels %d", def, levels)
	}
	if t := db.GetDefaultQueuePolicy().GetDefaultTimeoutMicroseconds(); t > uint64(maxDefaultTimeout/time.Microsecond) {
		return fmt.Errorf("dynamic_batching.default_queue_policy.default_timeout_microseconds %d: at most %d (%v)", t, maxDefaultTimeout/time.Microsecond, maxDefaultTimeout)
	}
	return nil
}

// DeviceKind is where instance_group asks a model to run.
type DeviceKind string

// The kinds. KIND_AUTO and KIND_MODEL leave the choice to the loader's
// default.
const (
	DeviceDefault DeviceKind = ""
	DeviceCPU     DeviceKind = "cpu"
	DeviceGPU     DeviceKind = "gpu"
)

// Instances is the first instance_group: where a version runs and how many
// executions it may run at once. servekit runs one session per version,
// which serves concurrent calls, so Count is not a number of copies: with
// dynamic batching it is the batches that run at once
// (batch.WithMaxInFlight).
type Instances struct {
	Kind DeviceKind
	// Count is the group's count; 0 when the config leaves it out.
	Count int
	// GPUs are the CUDA devices listed for DeviceGPU (servekit uses the
	// first); none means the loader's default device.
	GPUs []int
}

// Instances returns the first instance group, or false when the config
// has none.
func (c *Config) Instances() (Instances, bool) {
	groups := c.model().GetInstanceGroup()
	if len(groups) == 0 {
		return Instances{}, false
	}
	g := groups[0]
	in := Instances{Count: int(g.Count)}
	switch g.Kind {
	case modelconfigpb.ModelInstanceGroup_KIND_CPU:
		in.Kind = DeviceCPU
	case modelconfigpb.ModelInstanceGroup_KIND_GPU:
		in.Kind = DeviceGPU
		for _, d := range g.Gpus {
			in.GPUs = append(in.GPUs, int(d))
		}
	}
	return in, true
}

func checkInstances(groups []*modelconfigpb.ModelInstanceGroup) error {
	for i, g := range groups {
		if g.Count < 0 || g.Count > maxInstances {
			return fmt.Errorf("instance_group[%d].count %d: want 1 to %d (0: the default)", i, g.Count, maxInstances)
		}
		if g.Kind == modelconfigpb.ModelInstanceGroup_KIND_CPU && len(g.Gpus) > 0 {
			return fmt.Errorf("instance_group[%d]: gpus %v with kind KIND_CPU", i, g.Gpus)
		}
		if slices.ContainsFunc(g.Gpus, func(d int32) bool { return d < 0 }) {
			return fmt.Errorf("instance_group[%d].gpus %v: devices are numbered from 0", i, g.Gpus)
		}
	}
	return nil
}

// ResponseCache reports response_cache.enable, and whether the config sets
// it at all (when not, the server's default applies).
func (c *Config) ResponseCache() (enabled, set bool) {
	rc := c.model().GetResponseCache()
	return rc.GetEnable(), rc != nil
}

// GraphOptimization returns optimization.graph.level in Triton's numbering
// for ONNX Runtime (-1 basic, 0 all, 1 extended, 2 none), and whether the
// config sets it.
func (c *Config) GraphOptimization() (level int, set bool) {
	g := c.model().GetOptimization().GetGraph()
	return int(g.GetLevel()), g != nil
}

// MaxBatchSize is max_batch_size: above 0, the model batches on an
// implicit first dimension and a request may carry at most this many rows.
func (c *Config) MaxBatchSize() int { return int(c.model().GetMaxBatchSize()) }

// model is Model, never nil, so a zero Config reads as the defaults.
func (c *Config) model() *modelconfigpb.ModelConfig {
	if c == nil || c.Model == nil {
		return &modelconfigpb.ModelConfig{}
	}
	return c.Model
}

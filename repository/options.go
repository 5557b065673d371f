package repository

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/servekit/servekit/rollout"
	"github.com/servekit/servekit/serving"
	"github.com/servekit/servekit/serving/oip"
)

// Option configures Open.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults.
const (
	// DefaultPollInterval is how often the root is re-read. A poll that
	// finds nothing changed costs some twenty stat calls per version and a
	// config parse per model (BenchmarkSyncUnchanged: 0.2-0.4 ms of wall
	// time per version on these busy 2-core machines), so it can be
	// frequent; TF Serving polls every second, Triton's poll mode every
	// 15 s.
	DefaultPollInterval = 2 * time.Second
	// DefaultLoadTimeout bounds one version's load and warm-up.
	DefaultLoadTimeout = 5 * time.Minute
	// DefaultDrainTimeout bounds how long an unloaded or replaced version
	// may take to finish its in-flight requests when the watcher removes it.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultLoadConcurrency is how many versions load at once: loading is
	// CPU-bound (graph optimisation) and should not starve serving.
	DefaultLoadConcurrency = 2
	// DefaultModelFile is the model file in each version directory.
	DefaultModelFile = "model.onnx"
)

type config struct {
	poll         time.Duration
	loadTimeout  time.Duration
	drainTimeout time.Duration
	loads        int
	modelFile    string
	explicit     bool
	startup      []string
	log          *slog.Logger
	hook         func(model string, r *rollout.Router)
	server       *oip.Server          // WithServer
	serverMW     []serving.Middleware // WithServer
	routerOpts   []rollout.Option
	loaderFields []LoaderField
	strict       bool
	errs         []error // options out of range, reported by Open
}

// require records an option error unless ok (Open then fails).
func (c *config) require(ok bool, format string, args ...any) {
	if !ok {
		c.errs = append(c.errs, fmt.Errorf(format, args...))
	}
}

func newConfig(opts []Option) config {
	c := config{
		poll:         DefaultPollInterval,
		loadTimeout:  DefaultLoadTimeout,
		drainTimeout: DefaultDrainTimeout,
		loads:        DefaultLoadConcurrency,
		modelFile:    DefaultModelFile,
		log:          slog.Default(),
	}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// WithPollInterval sets how often the root is re-read for new, changed and
// removed versions (default DefaultPollInterval); 0 turns watching off, so
// the repository changes only through Sync, Load and Unload.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.require(d >= 0, "poll interval %v < 0", d); c.poll = d })
}

// WithExplicit is Triton's model control mode "explicit": Open loads only
// the models named here (none when empty), others load only through Load,
// and a model unloaded with Unload stays unloaded. Watching then covers
// the models that are loaded: their new, changed and removed versions.
// Without it every model directory in the root is served.
func WithExplicit(models ...string) Option {
	return optionFunc(func(c *config) { c.explicit, c.startup = true, models })
}

// WithLoadTimeout bounds one version's load plus warm-up (default
// DefaultLoadTimeout). A version that takes longer fails with
// DeadlineExceeded.
func WithLoadTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.require(d > 0, "load timeout %v <= 0", d); c.loadTimeout = d })
}

// WithDrainTimeout bounds how long the watcher waits for a removed version's
// in-flight requests (default DefaultDrainTimeout).
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.require(d > 0, "drain timeout %v <= 0", d); c.drainTimeout = d })
}

// WithLoadConcurrency sets how many versions may load at once (default
// DefaultLoadConcurrency).
func WithLoadConcurrency(n int) Option {
	return optionFunc(func(c *config) { c.require(n >= 1, "load concurrency %d < 1", n); c.loads = n })
}

// WithModelFile sets the model file name in each version directory
// (default DefaultModelFile); a model's config.json may override it with
// default_model_filename. Open refuses a name that is not a plain file
// name, as it refuses such a default_model_filename.
func WithModelFile(name string) Option {
	return optionFunc(func(c *config) {
		err := checkName(name)
		c.require(err == nil, "model file %q: %v", name, err)
		c.modelFile = name
	})
}

// WithLogger sets where every transition is logged (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.log = l
		}
	})
}

// WithModelHook calls fn when a model enters the repository, with its new
// router, and when it leaves, with nil. It is how a transport learns of
// models that appear while serving: register the router with
// httpapi.Handler.Handle, remove it with Remove. fn is called before the
// model's versions load (so their readiness reads 503, not 404, while they
// do) and before its versions are unloaded; it must not call back into the
// repository's Load, Unload or Sync.
func WithModelHook(fn func(model string, r *rollout.Router)) Option {
	return optionFunc(func(c *config) { c.hook = fn })
}

// WithRouterOptions passes options to every router the repository creates
// (rollout.New).
func WithRouterOptions(opts ...rollout.Option) Option {
	return optionFunc(func(c *config) { c.routerOpts = append(c.routerOpts, opts...) })
}

// WithLoaderFields says which configuration fields the LoadFunc applies,
// reading them from Version.Config: FieldDynamicBatching,
// FieldResponseCache, FieldInstanceGroup, FieldGraphOptimization. The
// repository cannot apply them itself (it builds no chains), so without
// this a config that sets them has them listed as ignored in
// ModelStatus.Ignored and the log, and WithStrictConfig refuses it.
func WithLoaderFields(fields ...LoaderField) Option {
	return optionFunc(func(c *config) { c.loaderFields = append(c.loaderFields, fields...) })
}

// WithStrictConfig refuses a configuration that sets a field servekit does
// not implement (ModelStatus.Ignored), the way Triton's
// --strict-model-config makes a config say all it means: the model's
// Reason says which fields, what is loaded keeps serving, and nothing new
// loads until the file is fixed. Without it such fields are logged once
// and listed in the status, and the model serves.
func WithStrictConfig() Option {
	return optionFunc(func(c *config) { c.strict = true })
}

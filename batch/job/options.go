package job

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

// Defaults. See the package doc for why.
const (
	DefaultBatchRows    = 256
	DefaultPartRows     = 64 << 10
	DefaultMaxErrorRate = 0.01
	DefaultMinRows      = 1000
	// DefaultProgressInterval is how often progress is drawn on a
	// terminal; plain lines (a log, a pod) come every
	// DefaultProgressLineInterval.
	DefaultProgressInterval     = 200 * time.Millisecond
	DefaultProgressLineInterval = 10 * time.Second
)

// Option configures Run.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	schema       rowio.Schema
	inFormat     rowio.Format
	outFormat    rowio.Format
	batchRows    int
	workers      int
	partRows     int64
	ordered      bool
	shard, count int
	maxErrRate   float64
	minRows      int64
	resume       bool
	progress     io.Writer
	every        time.Duration
	meters       metric.MeterProvider
	errs         []error
}

func newConfig(opts []Option) (config, error) {
	c := config{
		outFormat:  rowio.Parquet,
		batchRows:  DefaultBatchRows,
		workers:    runtime.GOMAXPROCS(0),
		partRows:   DefaultPartRows,
		ordered:    true,
		count:      1,
		maxErrRate: DefaultMaxErrorRate,
		minRows:    DefaultMinRows,
		resume:     true,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.meters == nil {
		c.meters = otel.GetMeterProvider()
	}
	if len(c.errs) > 0 {
		return c, serving.Errorf(serving.InvalidArgument, "batch/job: %v", c.errs[0])
	}
	return c, nil
}

func (c *config) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithSchema says which columns feed which model inputs and which are
// keys carried to the output. Default: rowio.DefaultSchema of the model's
// metadata (each input from the column of its name), no keys.
func WithSchema(s rowio.Schema) Option { return optionFunc(func(c *config) { c.schema = s }) }

// WithInputFormat names the input's format; by default its extension
// tells (.jsonl, .csv, .parquet).
func WithInputFormat(f rowio.Format) Option { return optionFunc(func(c *config) { c.inFormat = f }) }

// WithOutputFormat sets the format of the output parts. Default Parquet.
func WithOutputFormat(f rowio.Format) Option { return optionFunc(func(c *config) { c.outFormat = f }) }

// WithBatchRows sets the rows per Predict call. Default DefaultBatchRows.
func WithBatchRows(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.errorf("batch rows %d < 1", n)
			return
		}
		c.batchRows = n
	})
}

// WithWorkers sets how many Predict calls run at once. Default
// GOMAXPROCS.
func WithWorkers(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.errorf("workers %d < 1", n)
			return
		}
		c.workers = n
	})
}

// WithPartRows sets the input rows per part: the unit of checkpointing
// (a part is committed whole or redone) and of sharding. Every run of a
// job, and every shard, must use the same value; the manifest checks it.
// Default DefaultPartRows.
func WithPartRows(n int64) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.errorf("part rows %d < 1", n)
			return
		}
		c.partRows = n
	})
}

// WithOrdered(false) writes each batch as soon as it is scored, rather
// than in input order: rows carry their keys and row numbers, so the
// output is keyed, not ordered. Default true (input order).
func WithOrdered(ordered bool) Option { return optionFunc(func(c *config) { c.ordered = ordered }) }

// WithShard makes this run shard index of count (0 ≤ index < count): it
// scores the parts p with p mod count = index and writes under
// output/shard-IIIII-of-CCCCC. Default 0 of 1.
func WithShard(index, count int) Option {
	return optionFunc(func(c *config) {
		if count < 1 || index < 0 || index >= count {
			c.errorf("shard %d of %d: want 0 ≤ index < count", index, count)
			return
		}
		c.shard, c.count = index, count
	})
}

// WithMaxErrorRate stops the job when more than rate (0 to 1) of its rows
// have failed, judged once at least minRows rows were scored. Default
// DefaultMaxErrorRate after DefaultMinRows.
func WithMaxErrorRate(rate float64, minRows int64) Option {
	return optionFunc(func(c *config) {
		if rate < 0 || rate > 1 || minRows < 0 {
			c.errorf("max error rate %v after %d rows: want a rate in [0, 1] and rows ≥ 0", rate, minRows)
			return
		}
		c.maxErrRate, c.minRows = rate, minRows
	})
}

// WithResume(false) refuses an output directory that already holds a job
// (a manifest). Default true: Run continues the job it finds there.
func WithResume(resume bool) Option { return optionFunc(func(c *config) { c.resume = resume }) }

// WithProgress draws progress on w: a bar redrawn in place when w is a
// terminal, a plain line every DefaultProgressLineInterval otherwise (or
// every interval, when given and positive). Default: none.
func WithProgress(w io.Writer, interval time.Duration) Option {
	return optionFunc(func(c *config) { c.progress, c.every = w, interval })
}

// WithMeterProvider sets where metrics go. Default: the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meters = mp })
}

// Environment variables ShardFromEnv reads. Kubernetes sets the first in
// every pod of an Indexed Job; the second is set in the pod template to
// the Job's completions (see examples/batchjob/k8s).
const (
	EnvShardIndex = "JOB_COMPLETION_INDEX"
	EnvShardCount = "JOB_SHARD_COUNT"
)

// ShardFromEnv returns the shard index and count from EnvShardIndex and
// EnvShardCount: 0 of 1 when unset.
func ShardFromEnv() (index, count int, err error) {
	index, count = 0, 1
	if s := os.Getenv(EnvShardIndex); s != "" {
		if index, err = strconv.Atoi(s); err != nil {
			return 0, 0, fmt.Errorf("batch/job: %s=%q: %w", EnvShardIndex, s, err)
		}
	}
	if s := os.Getenv(EnvShardCount); s != "" {
		if count, err = strconv.Atoi(s); err != nil {
			return 0, 0, fmt.Errorf("batch/job: %s=%q: %w", EnvShardCount, s, err)
		}
	}
	return index, count, nil
}

// Command batchjob scores a file of rows with an ONNX model, resumably,
// and prints a summary. With no -input it first generates a dataset of
// -generate rows (1,000,000 by default) for the demo fraud model:
//
//	go run ./examples/batchjob                                  # 1M rows → Parquet in a temp dir
//	go run ./examples/batchjob -input tx.parquet -output out/   # generates tx.parquet if missing
//	go run ./examples/batchjob -input tx.csv -output out/ -format jsonl -workers 4
//
// Killed at any moment and started again with the same flags, it goes on
// from the parts already committed (-resume=false refuses instead). In a
// Kubernetes Indexed Job each pod takes its shard: -shard-index defaults
// to $JOB_COMPLETION_INDEX and -shard-count to $JOB_SHARD_COUNT (see
// k8s/). It exits 1 on any error, including too many failed rows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/servekit/servekit/backend/onnx"
	"github.com/servekit/servekit/batch/job"
	"github.com/servekit/servekit/internal/onnxbuild"
	"github.com/servekit/servekit/rowio"
	"github.com/servekit/servekit/serving"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "batchjob:", err)
		os.Exit(1)
	}
}

type options struct {
	model, ortLib      string
	threads            int
	input, inFormat    string
	output, format     string
	generate           int64
	batchRows, workers int
	partRows           int64
	resume, ordered    bool
	shardIndex, shards int
	maxErrRate         float64
	minRows            int64
	progress           time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	idx, count, err := job.ShardFromEnv()
	if err != nil {
		return options{}, err
	}
	var o options
	fs := flag.NewFlagSet("batchjob", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.model, "model", "testdata/models/fraud.onnx", "ONNX model to score with")
	fs.StringVar(&o.ortLib, "ort-lib", os.Getenv(onnx.EnvLibraryPath), "ONNX Runtime shared library ($"+onnx.EnvLibraryPath+")")
	fs.IntVar(&o.threads, "threads", 1, "ONNX Runtime intra-op threads (workers run in parallel already)")
	fs.StringVar(&o.input, "input", "", "input rows (.parquet, .jsonl, .csv); generated when missing. Default: a temp file")
	fs.StringVar(&o.inFormat, "input-format", "", "input format when the extension does not tell: parquet, jsonl or csv")
	fs.StringVar(&o.output, "output", "", "output directory. Default: a temp directory")
	fs.StringVar(&o.format, "format", "parquet", "output format: parquet, jsonl or csv")
	fs.Int64Var(&o.generate, "generate", 1_000_000, "rows to generate when the input does not exist")
	fs.IntVar(&o.batchRows, "batch-rows", 1024, "rows per Predict call")
	fs.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "Predict calls at once")
	fs.Int64Var(&o.partRows, "part-rows", job.DefaultPartRows, "input rows per committed part (checkpoint and shard unit)")
	fs.BoolVar(&o.resume, "resume", true, "continue the job found in -output; false refuses a non-empty job output")
	fs.BoolVar(&o.ordered, "ordered", true, "write rows in input order; false writes them as scored (keyed by id)")
	fs.IntVar(&o.shardIndex, "shard-index", idx, "this shard, from 0 ($"+job.EnvShardIndex+")")
	fs.IntVar(&o.shards, "shard-count", count, "number of shards ($"+job.EnvShardCount+")")
	fs.Float64Var(&o.maxErrRate, "max-error-rate", job.DefaultMaxErrorRate, "stop when more than this share of rows failed")
	fs.Int64Var(&o.minRows, "min-rows", job.DefaultMinRows, "rows scored before the error rate is judged")
	fs.DurationVar(&o.progress, "progress", 0, "progress interval (0: 200ms on a terminal, 10s otherwise)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	outFormat, err := rowio.ParseFormat(o.format)
	if err != nil {
		return err
	}
	var inFormat rowio.Format
	if o.inFormat != "" {
		if inFormat, err = rowio.ParseFormat(o.inFormat); err != nil {
			return err
		}
	}
	if o.shards > 1 && !exists(o.input) { // before any temporary folder is made for nothing
		return fmt.Errorf("input %q does not exist: generate it once before the shards start", o.input)
	}
	if o.input == "" || o.output == "" {
		tmp, err := os.MkdirTemp("", "batchjob-")
		if err != nil {
			return err
		}
		if o.input == "" {
			o.input = filepath.Join(tmp, "transactions-"+strconv.FormatInt(o.generate, 10)+".parquet")
		}
		if o.output == "" {
			o.output = filepath.Join(tmp, "scores")
		}
	}
	if !exists(o.input) {
		fmt.Fprintf(stdout, "generating %d rows into %s\n", o.generate, o.input)
		start := time.Now()
		if err := generate(o.input, o.generate); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		fmt.Fprintf(stdout, "generated in %v\n", time.Since(start).Round(time.Millisecond))
	}
	ortOpts := []onnx.Option{onnx.WithIntraOpThreads(o.threads)}
	if o.ortLib != "" {
		ortOpts = append(ortOpts, onnx.WithLibraryPath(o.ortLib))
	}
	model, err := onnx.Load(o.model, ortOpts...)
	if err != nil {
		return err
	}
	defer serving.Close(model)

	schema := rowio.Schema{Keys: []rowio.Field{{Name: "id", Type: serving.Int64}}}
	if md := model.Metadata(); len(md.Inputs) == 1 && md.Inputs[0].Name == "features" {
		// The demo model: its 8 features are 8 columns of the input.
		schema.Inputs = []rowio.Input{{Name: "features", Columns: onnxbuild.FraudFeatures}}
	}
	mem := watchMemory()
	fmt.Fprintf(stdout, "scoring %s into %s (%s, batches of %d, %d workers, shard %d of %d)\n",
		o.input, o.output, outFormat, o.batchRows, o.workers, o.shardIndex, o.shards)
	s, err := job.Run(ctx, model, o.input, o.output,
		job.WithSchema(schema), job.WithInputFormat(inFormat), job.WithOutputFormat(outFormat),
		job.WithBatchRows(o.batchRows), job.WithWorkers(o.workers), job.WithPartRows(o.partRows),
		job.WithResume(o.resume), job.WithOrdered(o.ordered), job.WithShard(o.shardIndex, o.shards),
		job.WithMaxErrorRate(o.maxErrRate, o.minRows), job.WithProgress(stderr, o.progress))
	peak := mem()
	if s != nil {
		fmt.Fprint(stdout, s)
		fmt.Fprintf(stdout, "memory: peak RSS %.0f MiB, peak Go heap %.0f MiB\n", peak.rss/(1<<20), peak.heap/(1<<20))
	}
	return err
}

// peak memory of the process while the job ran.
type peak struct{ rss, heap float64 }

// watchMemory samples the Go heap every 50 ms until the returned function
// is called, which returns the peaks: the heap's, and the resident set's
// high-water mark from the kernel (VmHWM, which includes ONNX Runtime's
// memory and the Go runtime's), so a job that streams shows flat numbers however many rows.
func watchMemory() func() peak {
	// Reset the kernel's high-water mark, so that generating the dataset
	// does not count (Linux ≥ 4.0; elsewhere the write fails, harmlessly).
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	quit, done := make(chan struct{}), make(chan float64)
	go func() {
		var top float64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, float64(ms.HeapInuse))
			select {
			case <-t.C:
			case <-quit:
				done <- top
				return
			}
		}
	}()
	return func() peak {
		close(quit)
		return peak{rss: vmHWM(), heap: <-done}
	}
}

// vmHWM reads the peak resident set size from /proc (0 elsewhere).
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

// exists reports whether path names a file; "" names none.
func exists(path string) bool {
	_, err := os.Stat(path)
	return path != "" && !errors.Is(err, os.ErrNotExist)
}

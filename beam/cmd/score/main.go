// Command score is a Beam pipeline that scores JSONL or CSV rows with an
// ONNX model and writes the results and the dead letters as JSONL. It runs
// on prism in-process by default, and on Dataflow, Flink or Spark with
// Beam's usual flags (see the module's README):
//
//	score --input=txns.jsonl --output=scores.jsonl --model=fraud.onnx
//	score --input='gs://b/txns-*.csv' --output=gs://b/scores.jsonl --model=gs://b/fraud.onnx \
//	    --runner=dataflow --project=P --region=europe-west1 --staging_location=gs://b/staging \
//	    --worker_harness_container_image=IMAGE-WITH-ONNX-RUNTIME
//
// # Input
//
// JSONL: one object a line. --key names the field carried through as the
// row's key (a string or a number); every other field, or only those
// listed in --inputs, is the model input of that name: a number, an array
// of numbers (nested arrays are flattened), a string or an array of
// strings (BYTES inputs). true and false are 1 and 0.
//
//	{"key": "txn-1", "features": [0.1, 0.5, 0.2, -1.3, 0.4, 1.1, 1, 0]}
//
// CSV: a header line, then one row a line (quoted fields work, newlines
// inside fields do not: textio splits files into lines). --key names the
// key column; the other columns, or those listed in --columns in that
// order, are the values of one numeric model input, --model_input (by
// default the model's only input). Every file of --input has the header
// of the first.
//
// # Output
//
// --output gets one JSON object per scored row, in no particular order:
//
//	{"key":"txn-1","model":"fraud","version":"3","outputs":{"score":[0.0123]}}
//
// --failures (default: the output name with ".failures" before its
// extension) gets one per row that could not be scored: the key, a code, the
// reason, and the input — the raw "line" when it could not be parsed, the
// parsed "inputs"/"strings" when the model refused the row. NaN and ±Inf
// are written as the strings "NaN", "Infinity" and "-Infinity", as
// servekit's HTTP API does. Numbers are written exactly (float64's
// shortest form).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/servekit/servekit/beam/scoring"
)

// config is what the flags say.
type config struct {
	input, format    string
	output, failures string
	key              string
	inputs           []string // JSONL fields that are model inputs; empty: all but the key
	columns          []string // CSV columns of the input; empty: all but the key
	modelInput       string   // CSV: the model input the columns feed
	model            scoring.Model
	maxBatchRows     int
}

func main() {
	var c config
	var inputs, columns string
	flag.StringVar(&c.input, "input", "", "input files (a glob; any Beam filesystem: local, gs://)")
	flag.StringVar(&c.format, "format", "", `"jsonl" or "csv" (default: from the input's extension)`)
	flag.StringVar(&c.output, "output", "", "results file (JSONL)")
	flag.StringVar(&c.failures, "failures", "", `dead-letter file (JSONL; default: the output with ".failures" before its extension)`)
	flag.StringVar(&c.key, "key", "key", `field or column carried through as the row's key ("" for none)`)
	flag.StringVar(&inputs, "inputs", "", "JSONL: comma-separated fields that are model inputs (default: all but the key)")
	flag.StringVar(&columns, "columns", "", "CSV: comma-separated columns, in input order (default: all but the key)")
	flag.StringVar(&c.modelInput, "model_input", "", "CSV: the model input the columns feed (default: the model's only input)")
	flag.StringVar(&c.model.Path, "model", "", "ONNX model file, as the workers see it (local path in their image, or gs://)")
	flag.StringVar(&c.model.Name, "model_name", "", "model name in the results (default: the file name)")
	flag.StringVar(&c.model.Version, "model_version", "", "model version in the results")
	flag.StringVar(&c.model.Library, "onnxruntime_lib", "", "ONNX Runtime library on the workers (default: their $ONNXRUNTIME_LIB)")
	flag.IntVar(&c.model.IntraOpThreads, "intra_op_threads", 0, "ONNX Runtime threads per operator (default 1)")
	cuda := flag.Int("cuda_device", -1, "run the model on this CUDA device (default: CPU)")
	flag.IntVar(&c.maxBatchRows, "max_batch_rows", scoring.DefaultMaxBatchRows, "most rows per model call")
	flag.Parse()
	beam.Init()

	c.inputs, c.columns = list(inputs), list(columns)
	if *cuda >= 0 {
		c.model.CUDA, c.model.CUDADevice = true, *cuda
	}
	ctx := context.Background()
	p, s := beam.NewPipelineWithRoot()
	if err := build(ctx, s, &c); err != nil {
		log.Fatal(err)
	}
	pr, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		log.Fatalf("score: %v", err)
	}
	if scored, failed, ok := counts(pr); ok {
		fmt.Fprintf(os.Stderr, "score: %d rows scored into %s, %d failed into %s\n", scored, c.output, failed, c.failures)
	}
}

// build adds the pipeline to s, filling in c's defaults.
func build(ctx context.Context, s beam.Scope, c *config) error {
	if c.input == "" || c.output == "" || c.model.Path == "" {
		return fmt.Errorf("score: --input, --output and --model are required")
	}
	if c.format == "" {
		c.format = "jsonl"
		if strings.HasSuffix(strings.TrimSuffix(c.input, ".gz"), ".csv") {
			c.format = "csv"
		}
	}
	if c.failures == "" {
		ext := path.Ext(c.output)
		c.failures = strings.TrimSuffix(c.output, ext) + ".failures" + ext
	}
	lines := textio.Read(s, c.input)
	var rows, bad beam.PCollection
	switch c.format {
	case "jsonl":
		rows, bad = beam.ParDo2(s, &jsonlFn{Key: c.key, Inputs: c.inputs}, lines)
	case "csv":
		fn, err := newCSVFn(ctx, c)
		if err != nil {
			return err
		}
		rows, bad = beam.ParDo2(s, fn, lines)
	default:
		return fmt.Errorf("score: --format %q: want jsonl or csv", c.format)
	}
	results, failures, err := scoring.TryScore(s, rows, c.model, scoring.WithMaxBatchRows(c.maxBatchRows))
	if err != nil {
		return err
	}
	textio.Write(s, c.output, beam.ParDo(s, resultJSON, results))
	textio.Write(s, c.failures, beam.Flatten(s, bad, beam.ParDo(s, failureJSON, failures)))
	return nil
}

// counts reads scoring's counters, where the runner reports them.
func counts(pr beam.PipelineResult) (scored, failed int64, ok bool) {
	if pr == nil {
		return 0, 0, false
	}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		switch c.Key.Name {
		case "rows_scored":
			scored += c.Result()
			ok = true
		case "rows_failed":
			failed += c.Result()
			ok = true
		}
	}
	return scored, failed, ok
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	f := strings.Split(s, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

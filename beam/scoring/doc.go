// Package scoring scores an Apache Beam PCollection with a servekit
// Predictor, so a batch job too big for one machine runs on Dataflow, Flink
// or Spark with the model and code that serve it online.
//
// Reach for Score: it takes a PCollection of Row (a key and the row's
// values per model input) and a Model (where workers load the model from),
// and returns the scored rows as Results (the key, each output's values,
// the model and version that answered) and the rows that could not be
// scored as Failures (the row, a code and the reason: the dead letters).
//
//	rows := beam.ParDo(s, toRow, lines)              // PCollection<scoring.Row>
//	results, failures := scoring.Score(s, rows,
//		scoring.Model{Path: "gs://models/fraud.onnx", Version: "3"},
//		scoring.WithMaxBatchRows(512))
//
// The module github.com/servekit/servekit/beam is separate from servekit's
// own, so that importing servekit does not bring in Beam's few hundred
// dependencies; cmd/score is a runnable pipeline (JSONL or CSV in, JSONL
// out) and the module's README shows the flags for each runner.
//
// # On the workers
//
// Score's DoFn loads the Predictor in Setup and closes it in Teardown, so
// a model is loaded when a worker starts, not per bundle or per element.
// Beam runs one DoFn instance per bundle thread, and instances of the same
// Model in a process share one Predictor (ONNX Runtime runs one session
// from many goroutines): a worker holds one copy of the model whatever
// its thread count, as Python's RunInference does with its shared handle.
// By default the ONNX backend loads Model.Path, read through Beam's
// filesystems (a local path in the worker image, or gs://, s3:// when
// the program imports those filesystems); RegisterLoader names other ways
// (another backend, middleware around the model, a model that is not in
// a file). Workers need ONNX Runtime: a container image with
// libonnxruntime.so.1 and ONNXRUNTIME_LIB pointing at it, or
// Model.Library.
//
// # Batching
//
// Rows are converted to the model's tensors as they arrive and joined into
// batches within a bundle: a batch is scored as soon as it holds
// WithMaxBatchRows rows, the rest when the bundle finishes. A runner
// decides bundle sizes (Dataflow's batch bundles hold thousands of
// elements; prism's hold what it was given), so batches stay full on
// large inputs. Rows whose inferred dims differ (a dynamic sequence
// length) go to different batches. Models that do not batch on dim 0 get
// one request per row. Results keep their row's event timestamp. Only
// globally windowed input is batched: output from FinishBundle lands in
// the global window, so rows in other windows are scored one by one, which
// keeps each in its window — score before WindowInto to batch a stream.
//
// # Failures
//
// A row that does not fit the model — a missing or unknown input, a wrong
// length, a value its datatype cannot hold exactly (2.5 for an INT64, 300
// for a UINT8) — goes to the dead letter as invalid_argument without
// reaching the model. When the model fails on a batch, the batch is split
// in halves and retried, so one poisoned row costs about 2·log2(batch)
// extra calls and only rows that fail alone are dead-lettered, with the
// model's code and message. Errors a retry may cure (unavailable,
// resource_exhausted, deadline_exceeded, canceled) are not dead-lettered:
// they fail the bundle, and the runner retries it; Beam discards a failed
// bundle's output, so no row is scored twice. A panicking Predictor is an
// internal failure of its rows, not a crashed worker.
//
// Counters rows_scored and rows_failed and the distribution batch_rows
// (namespace servekit.scoring) show progress in the runner's UI.
//
// # Element types
//
// Row, Result and Failure are plain structs: Beam encodes them with its
// schema coder, and they marshal to JSON as cmd/score writes them. Values
// travel as float64, which holds every FP32, FP16, BF16 value and integers
// up to 2^53 exactly; a Row value an input's datatype cannot hold exactly
// is refused rather than rounded. A model with one input also takes its
// values under the name "" (like the V1 protocol's "instances").
//
// Score's DoFn is not shared between goroutines by Beam; the shared
// Predictor is safe for concurrent use. RegisterLoader is safe to call
// from any goroutine, but belongs in init functions.
package scoring

// Package job runs offline batch inference over any serving.Predictor:
// it reads a JSONL, CSV or Parquet file as a stream, scores its rows in
// batches on N workers, and writes the answers as Parquet, JSONL or CSV
// parts that survive a crash: a job killed at any moment (kill -9) and
// started again finishes with every input row in the output exactly
// once. It is the in-process counterpart of KServe's batch transformer
// or a Spark scoring job.
//
// Reach for Run:
//
//	s, err := job.Run(ctx, model, "transactions.parquet", "scores/",
//		job.WithSchema(rowio.Schema{
//			Inputs: []rowio.Input{{Name: "features", Columns: featureColumns}},
//			Keys:   []rowio.Field{{Name: "id", Type: serving.Int64}},
//		}),
//		job.WithProgress(os.Stderr, 0))
//	fmt.Print(s) // rows, errors, rows/s, the distribution of each output
//
// Run is safe to call from several goroutines on different outputs; the
// Predictor is shared by its workers, as every Predictor allows.
//
// The job holds its Predictor to serving's contract that a caller may
// reuse a Request's tensor data once Predict returns: an input read from
// one column shares the frame the rows were read into, and that frame is
// read into again once the batch's answers and keys are written. So a
// Predictor that keeps a request past Predict copies what it keeps, as
// servekit's do (rollout's Shadow, drift's and quality's monitors,
// predlog, the cache's keys). Keeping requests uncopied, which a job
// once allowed, cost the wide MLP benchmark a fresh 256 KB buffer a
// batch (64 MB of garbage per 64k rows) for no middleware that needs it.
//
// # Output layout
//
// The output directory holds, for each part of PartRows input rows
// (WithPartRows, default 65536), part-NNNNNN.EXT with the part's scored
// rows and deadletter-NNNNNN.jsonl with its failed rows (either file is
// absent when empty), and _manifest.json listing the committed parts with
// their input row ranges. A scored row has the columns: row (the input
// row number), the schema's keys, each model output (a vector per row
// when the output has more than one element per row: a list in JSONL and
// Parquet, name_0 … name_{k-1} in CSV; see rowio), model, model_version
// (Response.Version, the version that answered, which a rollout router
// may pick) and timestamp (when the batch was answered, UTC). Rows are in
// input order within and across parts, or, with WithOrdered(false), in
// the order batches finish (keyed by row and keys), which spares the
// writer from holding early batches for a slow one.
//
// # Checkpoints
//
// A part's files are written under temporary names (on Linux, asking the
// kernel every 512 KiB to start writing them out, so that the fsync that
// commits a part waits for its tail only); when its last batch
// is in, they are fsynced and renamed into place, the directory fsynced,
// and then the manifest rewritten the same way. This happens on a
// committer goroutine, off the writer's path, for all the parts finished
// meanwhile at once (a group commit: one directory sync and one manifest
// save a group); the manifest is first written with the first group, and
// the last group also marks it complete. A run starts by removing
// temporary files, reads the manifest, and skips the parts it lists; a
// part renamed but not yet in the manifest is simply redone and its files
// replaced. So the parts the manifest names hold each of their rows once,
// whatever moment a crash hit. A run whose settings differ from the
// manifest's (input name or size, formats, part rows, shard) is refused.
// TestKillAndResume kills a real child process at random moments, four
// times in a row, for each output format, and checks that the last run
// leaves every input row exactly once.
//
// # Sharding
//
// WithShard(i, n) splits one input among n processes (the pods of a
// Kubernetes Indexed Job: ShardFromEnv reads JOB_COMPLETION_INDEX) by
// part number: shard i scores parts p with p mod n = i, and writes under
// output/shard-IIIII-of-NNNNN/. The split depends only on the input and
// PartRows, so it is deterministic, any shard can be rerun or resumed on
// its own, and the union of the shards is every row once. Each shard reads
// past the parts of others without decoding them (Parquet seeks to a row;
// JSONL and CSV scan lines), which costs little beside scoring. Splitting
// by part rather than by hash of a key keeps each shard's output in input
// order and needs no key.
//
// # Failures
//
// A row that does not decode (see rowio) goes to the dead letters with its
// row number, line and raw text. When a batch's Predict fails with an
// error that may be one row's fault (InvalidArgument, Internal, NotFound,
// Unimplemented), each of its rows is tried alone, and those that still
// fail go to the dead letters with their decoded input and the error. A
// transient error (Unavailable, ResourceExhausted, DeadlineExceeded) is
// retried three times with backoff (or the error's RetryAfter); then, as
// for a cancelled ctx, the job stops and returns it. Once MinRows rows are
// counted (this run and those in the manifest), a share of failed rows
// above WithMaxErrorRate stops the job with ErrTooManyErrors and a message
// naming the rate, the bound and the first failure; the parts committed
// stay, and a rerun with a higher bound goes on from them. Defaults: 1%
// after 1000 rows, about what a data pipeline tolerates before someone
// should look.
//
// # Progress, metrics and summary
//
// WithProgress draws a bar with the share read, rows, failures, rows/s and
// ETA on a terminal, or a plain line every 10 s elsewhere (a pod's log).
// The same figures are OpenTelemetry metrics (scope ScopeName, provider
// WithMeterProvider, default the global one), read from atomics at each
// collection: servekit.job.rows ({row}, outcome ok or failed),
// servekit.job.parts, servekit.job.progress (0 to 1), servekit.job.rate
// ({row}/s) and servekit.job.eta (s). Run returns a Summary: rows, errors,
// parts, duration, rows/s, and per output min, mean, max, quantiles and a
// histogram from a uniform sample of SampleSize values, or class counts
// for integer and text outputs; memory stays bounded however many rows.
//
// # Memory
//
// Each lane's reader is at most max(4, ⌈(2 × workers + 2) / lanes⌉)
// batches ahead of its writer and reads into the input frames the
// writers are done with; each lane's writer holds its open part's encoded
// pages (Parquet flushes a row group every rowio.MaxRowGroupRows rows)
// and the committer at most 16 finished parts as open files, so memory
// does not grow with the input: see Performance.
//
// # Performance
//
// A job is a pipeline over the cores it has, in lanes: a Parquet input
// is read by one lane per worker (at most 4, and no more than the shard
// has parts), lane i taking every
// lanes-th part of the shard and seeking past the others', as shards do,
// so that different parts are read and written at once (a text input,
// which can only skip rows by scanning them, has one lane). Each lane's
// reader goroutine decodes batches straight into frame columns (rowio
// reads Parquet pages into typed slices: no value is boxed); Workers
// goroutines, shared by the lanes, build each request (sharing an input
// read from one column, interleaving one made of several) and call
// Predict; each lane's writer (lane 0's is Run's goroutine) puts its
// answers in input order and hands each output column to parquet-go's
// column writer (typed runs, DELTA_BINARY_PACKED integers, Snappy's fast
// mode); one writer for all parts kept the fraud job at 1.4 of 2 cores,
// encoding on one of them;
// a committer goroutine makes finished parts durable in groups, so fsyncs
// never stall the others. Bounded channels join them, so reading, scoring
// and writing overlap, and what a batch allocates is reused: input frames
// go back to the reader once written, the columns requests share
// included (see the contract above; at most the lanes' windows of
// frames), the output's row number and timestamp columns back to the
// workers, and the model and version columns are one shared column
// each. The request tensor of an input made of several columns is the
// one copy left (rowio's Mapping.Request interleaves into a new slice).
//
// BenchmarkThroughput and BenchmarkThroughputWide time, in each
// iteration, the whole job (read Parquet, score through backend/onnx,
// write parts with fsync and a manifest) and three floors, each a stage
// alone as fast as parquet-go or ONNX Runtime do it: raw ONNX Runtime on
// the same rows as pre-formed batches, parquet-go's typed page reads of
// the input's columns, and parquet-go writing the output's pre-formed
// values with the same encodings into synced part files. Against commit
// 91c8882 (before this design), same harness, three rounds, min–median–
// max, on the shared 2-core machine here at load average 11-12 (which
// leaves any process about half a core, so CPU per row is the steady
// figure):
//
//	fraud MLP, 2M rows, batches of 1024, Parquet→Parquet
//	  job CPU a row    before 589–677–684 ns   after 194–212–217 ns
//	  floors a row     raw ORT 23–28 ns, read 23–30 ns, write 70–93 ns
//	  job rows/s       before 546k–578k–828k   after 1.89M–2.16M–2.36M
//	  job/raw          before 2.5–3.1%         after 9.6–13.3–22%
//	wide MLP, 32k rows, batches of 256, one 256-wide vector column
//	  job CPU a row    before 43.8k–45.9k–49.7k ns   after 36.9k–38.0k–38.6k ns
//	  floors a row     raw ORT 32.4k–33.9k ns, read 722–1131 ns, write 334–399 ns
//
// On a machine of its own the job can go as fast as two cores over its
// CPU a row (arithmetic, not measured here: the machine was never idle):
// about 210 ns a row for the fraud model, 9–10M rows/s, of which
// the floors are about 125 ns (writing the output about 75: parquet-go's
// column writers, with statistics for every page). The rest is the
// interleaving of the 8 feature columns into the request (about 18 ns),
// the collector (about 15), commits and the predictor's own overhead.
// For the wide model the job needed about 1.13 times raw ONNX Runtime's
// CPU a row. ONNX Runtime does not run slower in the job: the workers'
// own CPU time inside Predict (per-thread, getrusage) was 1.9–2.4 s a
// 64k-row job against raw's 2.1–2.4 s. Reading the 256-float list column
// costs what parquet-go's page reads cost (rowio 880 ns a row, the floor
// 924 in the same run: Snappy and copies), writing the output about 350
// ns. The rest was the scheduler: backend/onnx's watcher woke every 5
// ms to poll the runs' ctx, a P taken from a worker in cgo each time
// (about 1,500 of the job's 6,500 context switches); it now waits on
// the ctx every run shares. The single part of that job
// costs nothing measurable at moderate load (load 2–3: the first Predict
// 0.5 ms after Run starts, Run returning 3 ms after the last answer,
// fsyncs included; workers idle 0.5–6 ms of 1.2 s), but its second,
// empty lane halved the working lane's window, and at load 7 the workers
// then waited 5–20 % of the job for batches: lanes are now no more than
// the shard's parts.
//
// Against commit 999f0ad, same harness, nine rounds alternating for the
// wide job, three for the fraud job (the machine was at load 5–9
// throughout, three to nine times a quiet run's, so each iteration's
// wall ratio swung 0.4–2.3):
//
//	wide job/raw-cpu-med   before 1.081–1.128–1.185   after 1.056–1.092–1.163
//	wide job/raw-med       before 0.805–0.890–1.008   after 0.768–0.857–1.192
//	fraud job/raw-med      before 0.129–0.132–0.158   after 0.153–0.182–0.194
//	fraud job CPU a row    before 153–173–177 ns      after 153–153–158 ns
//
// The job's CPU beyond the model went from about 13 % to 9 % of raw's
// (in runs of the job alone, 6 % less CPU a row and 1,500 fewer context
// switches); at that load the wall ratio does not show it, and the
// wide job's 0.95 of raw is not shown. On two cores the job's wall time
// over raw's is at best raw's CPU over the job's, 1/1.09 = 0.92 now;
// what is left beyond the model is the input's decoding (2.5 %), the
// output's encoding (1 %), and the collector and scheduler around them.
//
// Where the wide job's CPU beyond raw's goes (perf record -g of the job
// alone and of raw ONNX Runtime alone, the same 64k rows and session
// options, six runs each, load 8–10; samples of the difference, in CPU
// a row): about 2.0 µs, 7 % of raw's 28–29 µs. Reading the 256-float
// list column 0.42 µs (Snappy 0.2, the copy into the batch 0.15, the
// kernel's file reads), writing the output 0.3 µs, the output
// statistics 0.12, the scheduler 0.14 (the kernel's context switches
// and Go's; sysmon woke 6,400 times in 5 s against raw's 4,000, as the
// workers' Ps are taken while they run the model), page faults 0.05, and
// ONNX Runtime's own code about 2 % slower beside the reader and writer
// (0.57 µs; 226 and 238 of 11,100 samples in two pairs of runs). Writing
// the 10-wide output column cost 0.5 µs before rowio set the list
// levels with Value's inlined setters (BenchmarkParquetWriteList: 413 →
// 171 CPU ns a row). Tried against the scheduler share, no change in CPU
// a row beyond noise, not kept: a reader that refills its window from
// half empty (380 of 5,500 voluntary switches a job fewer), workers
// locked to their threads (the model's runs spread over 6 threads
// against raw's 3, yet the same CPU), and a yield after each hand-over.
// So what is left is the two Parquet stages at their floors and ONNX
// Runtime sharing its two cores with them. Against commit 51deca0, same
// harness, two sets of three rounds alternating, load 3.7–15.6 (wall
// ratios swing 0.55–1.56 an iteration at that load, so only the CPU
// ratio speaks): wide job/raw-cpu-med before 1.067–1.099–1.112, after
// 1.078–1.089–1.123 (min–median–max of six); job/raw-med before
// 0.880–0.944–1.111, after 0.768–0.873–0.954, noise at that load. The
// 0.25 µs a row saved is 0.9 % of the job, the size of the CPU ratio's
// spread. With its CPU at 1.07–1.10 times raw's, the job's wall ratio on
// two cores of
// its own is at most 0.91–0.93: ≥ 0.90 with margin is not shown here.
//
// Recycling the columns requests share (see the contract above), against
// commit efab965, same harness, six rounds alternating for the wide job,
// three for the fraud job, load average 4.8–7.0:
//
//	wide job/raw-cpu-med   before 1.097–1.102–1.141   after 1.090–1.102–1.140
//	wide job/raw-med       before 0.797–0.875–0.952   after 0.820–0.886–0.973
//	wide job CPU a row     before 30.9k–32.3k–34.3k   after 29.8k–31.6k–36.0k ns
//	fraud job CPU a row    before 126–135–165 ns      after 124–129–144 ns
//
// The wide job allocates 200–250 bytes a 1 KB row instead of about 1,200
// (TestJobInputAllocBudget), but its CPU did not move: the benchmark
// keeps raw's 64 MB of pre-formed batches live, which sets the
// collector's goal so high that a job's 64 MB of garbage cost about one
// collection (GODEBUG=gctrace=1: 11–12 cycles for two iterations, before
// and after alike). A process with a small live heap (the batchjob
// example's 8 MB) collects far more often per row, and saves those
// collections now (not measured here). The fraud job's input is
// interleaved from 8 columns, which no request shares: its path is
// unchanged, and its figures differ by noise.
//
// Lanes, against commit 3e427c9 (one writer for all parts), same
// harness, six rounds alternating, min–median–max, load average 0.5–2.5:
//
//	fraud job cores busy   before 1.35–1.39–1.44   after 1.71–1.73–1.76
//	fraud job rows/s       before 8.3–10.2–13.0M   after 12.1–12.8–15.7M
//	fraud job/raw          before 0.111–0.112–0.117 after 0.135–0.152–0.182
//	fraud job CPU a row    before 106–137–174 ns   after 110–136–145 ns
//	wide job/raw           before 0.881–0.909–0.930 after 0.882–0.901–0.920
//
// Memory stays flat, measured with examples/batchjob (peak RSS from the
// kernel's high-water mark while scoring, ONNX Runtime included; live Go
// heap after GC from GODEBUG=gctrace=1):
//
//	100k rows: 58 MiB RSS,  8 MB live heap   (before this design: 71 MiB, 14 MB)
//	  1M rows: 73 MiB RSS, 12 MB live heap   (79 MiB, 16 MB)
//	  3M rows: 76 MiB RSS, 13 MB live heap   (82 MiB, 17 MB)
//
// With lanes (two workers: two open parts, the batchjob example's own
// peak RSS and peak Go heap, one writer's in brackets, same machine, one
// after the other): 100k rows 61 MiB, 1 MiB (58, 1); 1M rows 79 MiB,
// 26-29 MiB (68, 18-19); 3M rows 82 MiB, 33 MiB (71, 23). Still flat: a
// second open part costs about 10 MiB.
package job
